//! Typosquat / look-alike checks against the embedded corpus.

use pyward_intel::{CheckOptions, Confidence, NameChecker, PopularName, Transformation};

fn checker() -> NameChecker {
    NameChecker::builtin(false)
}

#[track_caller]
fn flagged(name: &str, imitates: &str) -> pyward_intel::SquatMatch {
    let m = checker()
        .check(name)
        .unwrap_or_else(|| panic!("{name} not flagged"));
    assert_eq!(m.imitates, imitates, "{name}: {m:?}");
    assert_eq!(m.name, name);
    assert!(m.imitates_rank >= 1 && m.score > 0.0 && m.score <= 1.0);
    assert!(m.explanation.contains(imitates));
    m
}

#[test]
fn incident_names() {
    let m = flagged("jeIlyfish", "jellyfish");
    assert_eq!(
        m.transformation,
        Transformation::CaseConfusable {
            from: "I".into(),
            to: "l".into()
        }
    );
    assert_eq!(m.confidence, Confidence::High);
    assert_eq!(m.imitates_rank, 1073);

    let m = flagged("python3-dateutil", "python-dateutil");
    assert_eq!(m.transformation, Transformation::PythonPrefixSuffix);
    assert_eq!(m.confidence, Confidence::High);
    assert_eq!(m.imitates_rank, 12);
    // Other spellings of the same squat.
    assert_eq!(
        flagged("Python3_Dateutil", "python-dateutil").confidence,
        Confidence::High
    );
    assert_eq!(
        flagged("jeilyfish", "jellyfish").transformation,
        Transformation::Substitution
    );
}

#[test]
fn known_squats() {
    for (name, target, t) in [
        ("reqeusts", "requests", Transformation::Transposition),
        ("requets", "requests", Transformation::Deletion),
        ("djanga", "django", Transformation::Substitution),
        ("colourama", "colorama", Transformation::Insertion),
        ("urlib3", "urllib3", Transformation::Deletion),
        ("pandsa", "pandas", Transformation::Transposition),
        (
            "scikitlearn",
            "scikit-learn",
            Transformation::SeparatorChange,
        ),
        (
            "py3-requests",
            "requests",
            Transformation::PythonPrefixSuffix,
        ),
    ] {
        let m = flagged(name, target);
        assert_eq!(m.transformation, t, "{name}");
        assert_eq!(m.confidence, Confidence::High, "{name}: {m:?}");
    }
}

#[test]
fn look_alike_characters() {
    let conf = |name: &str, target: &str, from: &str, to: &str| {
        let m = flagged(name, target);
        assert_eq!(
            m.transformation,
            Transformation::Confusable {
                from: from.into(),
                to: to.into()
            }
        );
        assert_eq!(m.confidence, Confidence::High);
    };
    conf("djang0", "django", "0", "o");
    conf("rnatplotlib", "matplotlib", "rn", "m");
    conf("c1ick", "click", "1", "l");
    conf("r\u{0435}quests", "requests", "\u{0435}", "e"); // Cyrillic е
    conf(
        "p\u{0430}nd\u{0430}s",
        "pandas",
        "\u{0430}nd\u{0430}",
        "anda",
    );
}

#[test]
fn weaker_forms_are_not_high() {
    let m = flagged("requests-secure", "requests");
    assert_eq!(
        m.transformation,
        Transformation::Combosquat {
            filler: "secure".into()
        }
    );
    assert_eq!(m.confidence, Confidence::Medium);
    assert_eq!(
        flagged("python-requests", "requests").confidence,
        Confidence::Medium
    );
    assert_eq!(flagged("pyredis", "redis").confidence, Confidence::Medium);
    // A version digit appended is how sibling projects are named: not High.
    assert_eq!(
        flagged("requests3", "requests").confidence,
        Confidence::Medium
    );
    let m = flagged("learn-scikit", "scikit-learn");
    assert_eq!(m.transformation, Transformation::ReorderedWords);
    assert_eq!(m.confidence, Confidence::Medium);
    // A py word moved to the other end of a top name: flagged, but legitimate
    // `X-python` projects exist, so not High.
    let m = flagged("dateutil-python", "python-dateutil");
    assert_eq!(m.confidence, Confidence::Medium);
}

#[test]
fn popular_names_are_not_flagged_unless_asked() {
    let c = checker();
    for name in [
        "requests",
        "Requests",
        "jellyfish",
        "python-dateutil",
        "python_dateutil",
        "boto3",
        "six",
    ] {
        assert!(c.check(name).is_none(), "{name}");
    }
    // authlib (#239) is one deletion from oauthlib (#99): only reported when asked.
    let c = NameChecker::builtin(true);
    assert_eq!(
        c.options(),
        CheckOptions {
            include_popular: true
        }
    );
    assert_eq!(
        c.check("authlib").map(|m| m.imitates),
        Some("oauthlib".into())
    );
    // ...and never against a less popular name.
    assert!(c.check("requests").is_none());
}

/// Real, legitimate projects that are not in the top 15,000: none may be a High finding.
const LEGITIMATE: &[&str] = &[
    "pynt",
    "molten",
    "masonite",
    "emmett",
    "hovercraft",
    "landslide",
    "pew",
    "vex",
    "transcrypt",
    "coconut",
    "npyscreen",
    "cocos2d",
    "responder",
    "turbogears2",
    "mezzanine",
    "lektor",
    "nikola",
    "briefcase",
    "toga",
    "begins",
    "pillow-simd",
    "pgmagick",
    "mahotas",
    "simplecv",
    "mayavi",
    "glumpy",
    "guiqwt",
    "enaml",
    "traitsui",
    "chaco",
    "envisage",
    "pyface",
    "apptools",
    "primefac",
    "tinyec",
    "ed25519",
    "airspeed",
    "kajiki",
    "pyjade",
    "hamlpy",
    "staticjinja",
    "cppyy",
    "sqlobject",
    "storm",
    "orator",
    "gino",
    "mongokit",
    "ming",
    "pymodm",
    "umongo",
    "flask-peewee",
    "spinach",
    "pyres",
    "kuyruk",
    "mrq",
    "durus",
    "attrs-strict",
    "typical",
    "requests3",
];

#[test]
fn legitimate_less_popular_names_are_not_high() {
    let c = checker();
    let mut flagged = 0;
    for name in LEGITIMATE {
        assert!(
            c.popular(name).is_none(),
            "{name} is in the corpus: pick another"
        );
        if let Some(m) = c.check(name) {
            flagged += 1;
            assert_ne!(m.confidence, Confidence::High, "{name}: {m:?}");
        }
    }
    // Some are near other names (emmett/emmet), but most must be silent.
    assert!(
        flagged * 4 < LEGITIMATE.len(),
        "{flagged} of {} flagged",
        LEGITIMATE.len()
    );
}

#[test]
fn ties_prefer_the_most_popular_target() {
    let corpus = vec![
        PopularName {
            name: "alphabet".into(),
            rank: 1,
            downloads: 100,
        },
        PopularName {
            name: "alphabot".into(),
            rank: 2,
            downloads: 50,
        },
    ];
    let c = NameChecker::new(corpus, CheckOptions::default());
    // `alphabat` is one substitution from both.
    let all = c.check_all("alphabat");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].imitates, "alphabet");
    assert_eq!(c.check("alphabat").unwrap().imitates, "alphabet");
}

#[test]
fn short_names_only_by_look_alikes() {
    let c = checker();
    // `six` and `idna` are popular; one edit away is not enough for short names.
    assert!(c.check("sax").is_none());
    assert!(c.check("idma").is_none());
    // ...but a look-alike character is.
    assert_eq!(
        c.check("idn\u{0430}").map(|m| m.imitates),
        Some("idna".into())
    );
}

#[test]
fn two_edits_only_for_long_names() {
    let c = checker();
    let m = c.check("djangorestframwork").unwrap(); // one deletion
    assert_eq!(m.imitates, "djangorestframework");
    let m = c.check("djangorestfranwork").unwrap(); // deletion + substitution
    assert_eq!(m.imitates, "djangorestframework");
    assert_eq!(m.transformation, Transformation::DoubleEdit);
    assert_eq!(m.confidence, Confidence::Medium);
    assert!(c.check("nunpyy").is_none(), "two edits on a short name");
}

#[test]
fn hostile_names_do_not_panic() {
    let c = checker();
    let long = "a".repeat(10_000);
    for name in [
        "",
        " ",
        "-",
        "---",
        "\u{0}",
        "\u{202e}requests",
        "ｒｅｑｕｅｓｔｓ",
        &long,
        "é",
        "py",
        "python",
        "python3",
        "-py-",
    ] {
        let _ = c.check_all(name);
    }
    // Fullwidth letters are a look-alike of the ASCII name.
    assert_eq!(
        c.check("ｒｅｑｕｅｓｔｓ").map(|m| m.imitates),
        Some("requests".into())
    );
}
