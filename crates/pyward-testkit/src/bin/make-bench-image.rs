//! Writes the benchmark image: `make-bench-image SITE_PACKAGES OUT.tar` → a gzip-layered
//! `docker save` tarball whose site-packages is a copy of a real one (e.g. the benchmark
//! virtualenv's), streamed from disk.

use pyward_testkit::image::{Compression, ImageBuilder, Layer};

fn main() -> anyhow::Result<()> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [site, out] = args.as_slice() else {
        anyhow::bail!("usage: make-bench-image SITE_PACKAGES OUT.tar");
    };
    let img = ImageBuilder::new()
        .tag("pyward-bench/datasci:latest")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by("/bin/sh -c #(nop) ADD file:bench in / ")
                .file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
                .file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        )
        .empty_step("/bin/sh -c #(nop)  CMD [\"bash\"]")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by(
                    "RUN /bin/sh -c pip install pandas scipy scikit-learn matplotlib jupyterlab django boto3 # buildkit",
                )
                .from_disk("/usr/local/lib/python3.11/site-packages", site),
        );
    let written = img.write_docker_archive(std::path::Path::new(out))?;
    let _ = written;
    println!("wrote {}", std::path::Path::new(out).display());
    Ok(())
}
