//! Writes the inert demo images: `make-demo-images OUT_DIR` → OUT_DIR/image.tar (incident 1) and
//! OUT_DIR/clean-image.tar.

fn main() -> anyhow::Result<()> {
    let Some(dir) = std::env::args_os().nth(1) else {
        anyhow::bail!("usage: make-demo-images OUT_DIR");
    };
    let dir = std::path::PathBuf::from(dir);
    pyward_testkit::demo::write_demo_images(&dir)?;
    println!("wrote {0}/image.tar and {0}/clean-image.tar", dir.display());
    Ok(())
}
