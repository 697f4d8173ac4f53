//! The shipped demo images: an inert reproduction of incident 1 (`python3-dateutil` and
//! `jeIlyfish` installed by `RUN pip install python3-dateutil`) and a clean twin, plus the big
//! image of the benchmarks. Every file in them is inert data.

use crate::image::{Compression, ImageBuilder, Layer};
use crate::wheel::{incident1_wheels, WheelSpec};
use std::path::Path;

/// site-packages of the official `python:3.11-slim` images.
pub const SITE_PACKAGES: &str = "/usr/local/lib/python3.11/site-packages";

/// A layer that holds `wheels` installed the way pip installs them: the files, and a
/// `.dist-info` with METADATA, WHEEL, top_level.txt, INSTALLER and a RECORD whose hashes match.
pub fn installed_layer(site_packages: &str, wheels: &[&WheelSpec]) -> Layer {
    let mut layer = Layer::new().compression(Compression::Gzip);
    for w in wheels {
        let di = w.dist_info();
        let mut members: Vec<(String, Vec<u8>)> = w.files.clone();
        members.push((format!("{di}/METADATA"), w.metadata().into_bytes()));
        members.push((
            format!("{di}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: pyward-testkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ));
        members.push((format!("{di}/INSTALLER"), b"pip\n".to_vec()));
        let mut record = String::new();
        for (p, c) in &members {
            record.push_str(&format!(
                "{p},sha256={},{}\n",
                crate::wheel::record_hash(c),
                c.len()
            ));
        }
        record.push_str(&format!("{di}/RECORD,,\n"));
        members.push((format!("{di}/RECORD"), record.into_bytes()));
        for (p, c) in members {
            layer = layer.file(&format!("{site_packages}/{p}"), c);
        }
    }
    layer
}

/// The base every demo image starts from: a tiny stand-in for `python:3.11-slim` with pip and
/// setuptools installed.
fn base(builder: ImageBuilder) -> ImageBuilder {
    let pip = WheelSpec::new("pip", "23.2.1").file("pip/__init__.py", "__version__ = '23.2.1'\n");
    let setuptools = WheelSpec::new("setuptools", "65.5.1")
        .file("setuptools/__init__.py", "__version__ = '65.5.1'\n");
    let os = Layer::new()
        .compression(Compression::Gzip)
        .created_by("/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / ")
        .file(
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        )
        .file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
        .dir("/root")
        .dir("/tmp");
    let python = installed_layer(SITE_PACKAGES, &[&pip, &setuptools])
        .created_by("/bin/sh -c set -eux; ./configure --enable-optimizations && make install")
        .file_mode(
            "/usr/local/bin/python3.11",
            "#!inert stand-in for the CPython binary\n",
            0o755,
        )
        .symlink("/usr/local/bin/python3", "python3.11")
        .symlink("/usr/local/bin/python", "python3");
    builder
        .layer(os)
        .empty_step("/bin/sh -c #(nop)  CMD [\"bash\"]")
        .empty_step("ENV PYTHON_VERSION=3.11.7")
        .layer(python)
}

fn app(builder: ImageBuilder) -> ImageBuilder {
    builder
        .empty_step("WORKDIR /app")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by("COPY app.py /app/ # buildkit")
                .file("/app/app.py", "import dateutil\nprint('hello')\n"),
        )
        .empty_step("CMD [\"python3\", \"app.py\"]")
        .cmd(&["python3", "app.py"])
        .env("PATH=/usr/local/bin:/usr/bin:/bin")
}

/// Incident 1: `RUN pip install python3-dateutil` pulled in `jeIlyfish`.
pub fn incident1_image() -> ImageBuilder {
    let (jeilyfish, dateutil) = incident1_wheels();
    let b = base(ImageBuilder::new().tag("pyward-demo/incident-1:latest"));
    let b = b.layer(
        installed_layer(SITE_PACKAGES, &[&dateutil, &jeilyfish])
            .created_by("RUN /bin/sh -c pip install python3-dateutil # buildkit"),
    );
    app(b)
}

/// The same application built with the real names: `python-dateutil` and `jellyfish`.
pub fn clean_image() -> ImageBuilder {
    let jellyfish = WheelSpec::new("jellyfish", "1.1.0").file(
        "jellyfish/__init__.py",
        "def jaro_similarity(a, b):\n    return 0.0\n",
    );
    let dateutil = WheelSpec::new("python-dateutil", "2.9.0.post0")
        .requires("six>=1.5")
        .file("dateutil/__init__.py", "__version__ = '2.9.0'\n");
    let six = WheelSpec::new("six", "1.16.0").file("six.py", "__version__ = '1.16.0'\n");
    let b = base(ImageBuilder::new().tag("pyward-demo/clean:latest"));
    let b = b.layer(
        installed_layer(SITE_PACKAGES, &[&dateutil, &six, &jellyfish])
            .created_by("RUN /bin/sh -c pip install python-dateutil jellyfish # buildkit"),
    );
    // The clean twin also follows the default policy's advice: it does not run as root.
    app(b).empty_step("USER app").user("app")
}

/// Write `image.tar` (incident 1) and `clean-image.tar` as `docker save` tarballs into `dir`.
pub fn write_demo_images(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    incident1_image().write_docker_archive(&dir.join("image.tar"))?;
    clean_image().write_docker_archive(&dir.join("clean-image.tar"))?;
    Ok(())
}
