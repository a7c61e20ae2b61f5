//! Direct-I/O files, and the work-around for glommio's poll-ring probe.
//!
//! glommio 0.9 decides once per block device (and per shard thread) whether
//! to send O_DIRECT reads to its polled ring, by reading offset 0 of the
//! first DMA file opened on that device. If that file is empty the read
//! "succeeds", polling is wrongly enabled for the whole device, and every
//! later read fails with `EOPNOTSUPP` on disks without poll queues (upstream
//! issues #605, #670). [`dma_probe`] opens a file that holds a full block
//! first, so glommio caches "not pollable". Run it on every shard, for every
//! directory that will hold DMA files, before opening any other DMA file
//! there; [`super::ShardRuntime`] does so for [`super::ShardConfig::dma_probe_dirs`].

use std::io::{self, Write};
use std::path::Path;

pub use glommio::io::{
    DmaBuffer, DmaFile, DmaStreamReader, DmaStreamReaderBuilder, DmaStreamWriter,
    DmaStreamWriterBuilder, OpenOptions, ReadResult,
};

/// Name of the probe file [`dma_probe`] keeps in each directory.
pub const DMA_PROBE_FILE: &str = ".tessera-dma-probe";

const PROBE_LEN: usize = 4096;

fn probe_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Makes DMA reads work in `dir` on the calling shard (see the module docs).
/// Creates `dir` if needed. Must run on a shard.
pub async fn dma_probe(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(DMA_PROBE_FILE);
    let content_ok = std::fs::read(&path)
        .map(|c| c.len() == PROBE_LEN && c.iter().enumerate().all(|(i, b)| *b == probe_byte(i)))
        .unwrap_or(false);
    if !content_ok {
        // Several shards may probe the same directory at once: write a
        // private temporary file and rename it, so a reader never sees a
        // short file (which would re-trigger the bug).
        let tmp = dir.join(format!(
            "{DMA_PROBE_FILE}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let data: Vec<u8> = (0..PROBE_LEN).map(probe_byte).collect();
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
    }
    let file = DmaFile::open(&path).await.map_err(io::Error::from)?;
    let read = file.read_at_aligned(0, PROBE_LEN).await;
    let closed = file.close().await;
    let buf = read.map_err(io::Error::from)?;
    closed.map_err(io::Error::from)?;
    if buf.len() != PROBE_LEN || buf.iter().enumerate().any(|(i, b)| *b != probe_byte(i)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} did not read back as written", path.display()),
        ));
    }
    Ok(())
}
