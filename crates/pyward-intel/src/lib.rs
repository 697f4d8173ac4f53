//! Threat intelligence: what is known to be malicious, and which names imitate popular ones.
