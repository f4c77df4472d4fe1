//! The host's RAM the machine works in: the manifest and one chunk.

#[cfg(any(feature = "std", test))]
use crate::manifest;

/// What the machine needs from the host's RAM.
pub trait Buffers {
    /// `len` bytes to receive a manifest into, kept unchanged until the update ends; `None`
    /// when the host cannot hold that much.
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]>;
    /// The first `len` bytes of the room given by the last [`Buffers::manifest_room`].
    fn manifest(&self, len: usize) -> &[u8];
    /// `len` bytes for one chunk (or one check-in answer), kept only within one response.
    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]>;
    /// The first `len` bytes of the chunk room.
    fn chunk(&self, len: usize) -> &[u8];
}

/// Buffers in two fixed slices (a board's static RAM).
pub struct SliceBuffers<'b> {
    pub manifest: &'b mut [u8],
    pub chunk: &'b mut [u8],
}

impl Buffers for SliceBuffers<'_> {
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.manifest.get_mut(..len)
    }

    fn manifest(&self, len: usize) -> &[u8] {
        self.manifest.get(..len).unwrap_or_default()
    }

    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.chunk.get_mut(..len)
    }

    fn chunk(&self, len: usize) -> &[u8] {
        self.chunk.get(..len).unwrap_or_default()
    }
}

/// Buffers that grow on demand and can be given back between updates (host drivers).
#[cfg(any(feature = "std", test))]
#[derive(Debug, Default)]
pub struct VecBuffers {
    manifest: Vec<u8>,
    chunk: Vec<u8>,
}

#[cfg(any(feature = "std", test))]
impl VecBuffers {
    /// Frees both buffers (the fleet does this while its device is not updating).
    pub fn release(&mut self) {
        self.manifest = Vec::new();
        self.chunk = Vec::new();
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.manifest.capacity() + self.chunk.capacity()
    }
}

#[cfg(any(feature = "std", test))]
impl Buffers for VecBuffers {
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > manifest::MAX_LEN {
            return None;
        }
        if self.manifest.len() != len {
            self.manifest.clear();
            self.manifest.resize(len, 0);
        }
        Some(&mut self.manifest)
    }

    fn manifest(&self, len: usize) -> &[u8] {
        self.manifest.get(..len).unwrap_or_default()
    }

    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.chunk.len() {
            self.chunk.resize(len, 0);
        }
        self.chunk.get_mut(..len)
    }

    fn chunk(&self, len: usize) -> &[u8] {
        self.chunk.get(..len).unwrap_or_default()
    }
}
