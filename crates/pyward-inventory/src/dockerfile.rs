//! Dockerfile parsing (continuations, comments, parser directives, JSON and shell forms) and the
//! Python packages its `RUN pip install` lines name.

/// One instruction: `RUN pip install x` → directive `RUN`, arguments `pip install x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased directive (`RUN`, `FROM`, `USER`...).
    pub directive: String,
    /// Everything after the directive word, continuations joined with a space.
    pub arguments: String,
    /// 1-based line the instruction starts on.
    pub line: u32,
}

impl Instruction {
    /// `DIRECTIVE arguments`, as Anchore's dockerfile gate sees a line.
    pub fn text(&self) -> String {
        format!("{} {}", self.directive, self.arguments)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
}

/// A Python package named by a `pip install` in a `RUN` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipInstall {
    /// The requirement as written (`jeIlyfish==0.5.1`, `python3-dateutil`).
    pub requirement: String,
    /// Line of the RUN instruction.
    pub line: u32,
}

/// A requirements file that a `pip install -r FILE` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipRequirementFile {
    /// The path as written in the RUN line (inside the image).
    pub path: String,
    pub line: u32,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let _ = text;
        Dockerfile::default()
    }

    /// Every package named on a `pip install` / `pip3 install` / `python -m pip install` /
    /// `uv pip install` in RUN lines, and the `-r` files they read.
    pub fn pip_installs(&self) -> (Vec<PipInstall>, Vec<PipRequirementFile>) {
        (Vec::new(), Vec::new())
    }
}
