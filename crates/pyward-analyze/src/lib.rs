//! Static heuristics over Python package files (work in progress).
