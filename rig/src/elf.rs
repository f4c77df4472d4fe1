//! Symbol → address from an ELF file's symbol table, for a breakpoint at a symbol.
//!
//! A small bounds-checked reader of the section headers and `.symtab` (ELF32/ELF64, either
//! byte order): the rig needs nothing else from the file, probe-rs does not re-export its
//! `object` dependency, and this keeps symbol lookup available (and tested) without the `probe`
//! feature.
//!
//! A name matches a symbol exactly (`#[no_mangle]` functions, C symbols, mangled names), or as a
//! Rust path (`ota_core::boot::mark_booted`) against legacy-mangled names
//! (`_ZN8ota_core4boot11mark_booted17h…E`). On ARM the Thumb bit of function addresses is
//! cleared: the result is where a breakpoint goes.

use std::path::Path;

/// Why a symbol could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read the ELF file: {0}")]
    Read(String),
    #[error("not an ELF file")]
    NotElf,
    #[error("truncated or corrupt ELF file ({0})")]
    Corrupt(&'static str),
    #[error("no symbol table (stripped?); use the unstripped ELF the image was built from")]
    NoSymbols,
    #[error(
        "symbol `{symbol}` not found (a Rust function needs #[no_mangle] or its full path){similar}"
    )]
    NotFound { symbol: String, similar: String },
    #[error(
        "symbol `{symbol}` is ambiguous: {candidates}; use the mangled name or a #[no_mangle] one"
    )]
    Ambiguous { symbol: String, candidates: String },
}

/// `EM_ARM`: function symbols carry the Thumb bit.
const EM_ARM: u16 = 40;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const STT_SECTION: u8 = 3;
const STT_FILE: u8 = 4;
/// How many near names a "not found" error lists.
const SIMILAR_MAX: usize = 5;

/// A symbol lookup in an ELF file that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct SymbolError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: ElfError,
}

/// The address of `symbol` in the ELF file at `path`.
pub fn symbol_address_in(path: &Path, symbol: &str) -> Result<u64, SymbolError> {
    std::fs::read(path)
        .map_err(|e| ElfError::Read(e.to_string()))
        .and_then(|bytes| symbol_address(&bytes, symbol))
        .map_err(|source| SymbolError {
            path: path.to_path_buf(),
            source,
        })
}

/// The address of `symbol` in the ELF image `elf`.
pub fn symbol_address(elf: &[u8], symbol: &str) -> Result<u64, ElfError> {
    let file = Elf::parse(elf)?;
    let mangled_prefix = legacy_mangled_prefix(symbol);
    let mut found: Vec<(String, u64)> = Vec::new();
    let mut similar: Vec<String> = Vec::new();
    file.for_each_symbol(|name, addr| {
        let hit = name == symbol
            || mangled_prefix
                .as_deref()
                .is_some_and(|p| is_legacy_mangled_as(name, p));
        if hit {
            if !found.iter().any(|(_, a)| *a == addr) {
                found.push((name.to_string(), addr));
            }
        } else if similar.len() < SIMILAR_MAX
            && name.contains(symbol.rsplit("::").next().unwrap_or(symbol))
        {
            similar.push(name.to_string());
        }
    })?;
    match found.as_slice() {
        [(_, addr)] => Ok(*addr),
        [] => Err(ElfError::NotFound {
            symbol: symbol.to_string(),
            similar: if similar.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", similar.join(", "))
            },
        }),
        many => Err(ElfError::Ambiguous {
            symbol: symbol.to_string(),
            candidates: many
                .iter()
                .map(|(n, a)| format!("{n} at {a:#x}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `a::b::c` → `_ZN1a1b1c`; `None` for a plain name. Paths are written as `nm -C` prints them:
/// generic parameters as Rust spells them (`Device<F>::store` → `Device$LT$F$GT$`), and a
/// method of an impl block in another module through its impl segment
/// (`a::update::<impl a::Device<F>>::write_chunk` → `..._$LT$impl$u20$a..Device$LT$F$GT$$GT$...`),
/// escaped as the legacy scheme does.
fn legacy_mangled_prefix(path: &str) -> Option<String> {
    let parts = top_level_segments(path)?;
    if parts.len() < 2 {
        return None;
    }
    let mut out = String::from("_ZN");
    for part in parts {
        let mut escaped = String::with_capacity(part.len());
        let mut chars = part.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                ':' if chars.peek() == Some(&':') => {
                    chars.next();
                    escaped.push_str("..");
                }
                '<' => escaped.push_str("$LT$"),
                '>' => escaped.push_str("$GT$"),
                ' ' => escaped.push_str("$u20$"),
                ',' => escaped.push_str("$C$"),
                '&' => escaped.push_str("$RF$"),
                '*' => escaped.push_str("$BP$"),
                c => escaped.push(c),
            }
        }
        if escaped.starts_with('$') {
            escaped.insert(0, '_');
        }
        out.push_str(&escaped.len().to_string());
        out.push_str(&escaped);
    }
    Some(out)
}

/// `path` split at the `::` outside angle brackets (`a::<impl b::C<D>>::e` → `a`,
/// `<impl b::C<D>>`, `e`); `None` for an empty segment or unbalanced brackets.
fn top_level_segments(path: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.checked_sub(1)?,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                parts.push(&path[start..i]);
                i += 2;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&path[start..]);
    (depth == 0 && parts.iter().all(|p| !p.is_empty())).then_some(parts)
}

/// `name` is `prefix` followed by a legacy hash segment (`17h<16 hex>E`).
fn is_legacy_mangled_as(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("17h"))
        .and_then(|rest| rest.strip_suffix('E'))
        .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A parsed ELF header: just what the symbol walk needs.
struct Elf<'a> {
    data: &'a [u8],
    wide: bool,
    little: bool,
    machine: u16,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
}

/// One section header's fields used here.
struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(ElfError::NotElf);
        }
        let wide = match data.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(ElfError::Corrupt("class")),
        };
        let little = match data.get(5) {
            Some(1) => true,
            Some(2) => false,
            _ => return Err(ElfError::Corrupt("byte order")),
        };
        let mut elf = Self {
            data,
            wide,
            little,
            machine: 0,
            shoff: 0,
            shentsize: 0,
            shnum: 0,
        };
        elf.machine = elf.u16(18)?;
        if wide {
            elf.shoff = elf.u64(0x28)?;
            elf.shentsize = elf.u16(0x3a)?.into();
            elf.shnum = elf.u16(0x3c)?.into();
        } else {
            elf.shoff = elf.u32(0x20)?.into();
            elf.shentsize = elf.u16(0x2e)?.into();
            elf.shnum = elf.u16(0x30)?.into();
        }
        Ok(elf)
    }

    fn bytes<const N: usize>(&self, at: u64) -> Result<[u8; N], ElfError> {
        usize::try_from(at)
            .ok()
            .and_then(|at| self.data.get(at..at.checked_add(N)?))
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(ElfError::Corrupt("offset past the end of the file"))
    }

    fn u16(&self, at: u64) -> Result<u16, ElfError> {
        let b = self.bytes::<2>(at)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: u64) -> Result<u32, ElfError> {
        let b = self.bytes::<4>(at)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, at: u64) -> Result<u64, ElfError> {
        let b = self.bytes::<8>(at)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }

    /// An address-sized field.
    fn addr(&self, at: u64) -> Result<u64, ElfError> {
        if self.wide {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }

    fn section(&self, index: u64) -> Result<Section, ElfError> {
        if index >= self.shnum {
            return Err(ElfError::Corrupt("section index"));
        }
        let at = index
            .checked_mul(self.shentsize)
            .and_then(|o| o.checked_add(self.shoff))
            .ok_or(ElfError::Corrupt("section header offset"))?;
        let field = |o: u64| at.checked_add(o).ok_or(ElfError::Corrupt("section header"));
        let (offset, size, link, entsize) = if self.wide {
            (field(0x18)?, field(0x20)?, field(0x28)?, field(0x38)?)
        } else {
            (field(0x10)?, field(0x14)?, field(0x18)?, field(0x24)?)
        };
        Ok(Section {
            kind: self.u32(field(4)?)?,
            offset: self.addr(offset)?,
            size: self.addr(size)?,
            link: self.u32(link)?,
            entsize: self.addr(entsize)?,
        })
    }

    /// The NUL-terminated string at `at` of the string table `strtab`.
    fn str_at(&self, strtab: &Section, at: u32) -> Result<&'a str, ElfError> {
        if u64::from(at) >= strtab.size {
            return Err(ElfError::Corrupt("symbol name offset"));
        }
        let start = usize::try_from(strtab.offset.saturating_add(at.into()))
            .map_err(|_| ElfError::Corrupt("string table"))?;
        let end = usize::try_from(strtab.offset.saturating_add(strtab.size))
            .map_err(|_| ElfError::Corrupt("string table"))?;
        let bytes = self
            .data
            .get(start..end.min(self.data.len()))
            .ok_or(ElfError::Corrupt("string table"))?;
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).map_err(|_| ElfError::Corrupt("symbol name"))
    }

    /// Calls `f(name, address)` for every defined, named code/data symbol of the symbol table
    /// (`.symtab`, else `.dynsym`).
    fn for_each_symbol(&self, mut f: impl FnMut(&str, u64)) -> Result<(), ElfError> {
        let mut tables = Vec::new();
        for i in 0..self.shnum {
            let s = self.section(i)?;
            if s.kind == SHT_SYMTAB || s.kind == SHT_DYNSYM {
                tables.push(s);
            }
        }
        tables.sort_by_key(|s| s.kind != SHT_SYMTAB);
        let table = tables.into_iter().next().ok_or(ElfError::NoSymbols)?;
        let strtab = self.section(table.link.into())?;
        let min_entsize = if self.wide { 24 } else { 16 };
        if table.entsize < min_entsize {
            return Err(ElfError::Corrupt("symbol entry size"));
        }
        for n in 1..table.size / table.entsize {
            let at = n
                .checked_mul(table.entsize)
                .and_then(|o| o.checked_add(table.offset))
                .ok_or(ElfError::Corrupt("symbol table offset"))?;
            let (name, info, shndx, value) = if self.wide {
                (
                    self.u32(at)?,
                    self.bytes::<1>(at.saturating_add(4))?[0],
                    self.u16(at.saturating_add(6))?,
                    self.u64(at.saturating_add(8))?,
                )
            } else {
                (
                    self.u32(at)?,
                    self.bytes::<1>(at.saturating_add(12))?[0],
                    self.u16(at.saturating_add(14))?,
                    self.u32(at.saturating_add(4))?.into(),
                )
            };
            let kind = info & 0xf;
            if shndx == 0 || name == 0 || kind == STT_SECTION || kind == STT_FILE {
                continue;
            }
            let addr = if self.machine == EM_ARM && kind == STT_FUNC {
                value & !1
            } else {
                value
            };
            f(self.str_at(&strtab, name)?, addr);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF32 for ARM with a `.symtab` of `(name, value, type)`.
    pub(crate) fn arm_elf(symbols: &[(&str, u32, u8)]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 16]; // the null symbol
        for (name, value, kind) in symbols {
            let off = u32::try_from(strtab.len()).expect("small");
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&off.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&4u32.to_le_bytes());
            symtab.push(0x10 | kind); // global
            symtab.push(0);
            symtab.extend_from_slice(&1u16.to_le_bytes()); // defined in section 1
        }
        let symtab_off = 52u32;
        let strtab_off = symtab_off + u32::try_from(symtab.len()).expect("small");
        let shoff = strtab_off + u32::try_from(strtab.len()).expect("small");
        let mut out = vec![0u8; 52];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 1;
        out[5] = 1;
        out[6] = 1;
        out[18..20].copy_from_slice(&EM_ARM.to_le_bytes());
        out[0x20..0x24].copy_from_slice(&shoff.to_le_bytes());
        out[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        out[0x30..0x32].copy_from_slice(&3u16.to_le_bytes());
        out.extend_from_slice(&symtab);
        out.extend_from_slice(&strtab);
        let header = |kind: u32, off: u32, size: usize, link: u32, entsize: u32| {
            let mut h = vec![0u8; 40];
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[0x10..0x14].copy_from_slice(&off.to_le_bytes());
            h[0x14..0x18].copy_from_slice(&u32::try_from(size).expect("small").to_le_bytes());
            h[0x18..0x1c].copy_from_slice(&link.to_le_bytes());
            h[0x24..0x28].copy_from_slice(&entsize.to_le_bytes());
            h
        };
        out.extend(header(0, 0, 0, 0, 0));
        out.extend(header(SHT_SYMTAB, symtab_off, symtab.len(), 2, 16));
        out.extend(header(3, strtab_off, strtab.len(), 0, 0));
        out
    }

    #[test]
    fn resolves_plain_thumb_and_rust_path_symbols() {
        let elf = arm_elf(&[
            ("mark_booted", 0x1000_0101, STT_FUNC),
            ("BOOT_STATE", 0x2000_0400, 1),
            (
                "_ZN8ota_core4boot6commit17h0123456789abcdefE",
                0x1000_2001,
                STT_FUNC,
            ),
            (
                "_ZN8ota_core6device15Device$LT$F$GT$11write_chunk17h68fbce58ff038213E",
                0x1002_4001,
                STT_FUNC,
            ),
            // The QEMU app's, as rustc names it (the impl block lives in device/update.rs).
            (
                "_ZN8ota_core6device6update51_$LT$impl$u20$ota_core..device..Device$LT$F$GT$$GT$11write_chunk17hfc00c9d24e55799eE",
                0x1010_8195,
                STT_FUNC,
            ),
        ]);
        assert_eq!(
            symbol_address(&elf, "ota_core::device::Device<F>::write_chunk"),
            Ok(0x1002_4000),
            "a generic impl's method, written as Rust spells it"
        );
        assert_eq!(symbol_address(&elf, "mark_booted"), Ok(0x1000_0100));
        assert_eq!(
            symbol_address(
                &elf,
                "ota_core::device::update::<impl ota_core::device::Device<F>>::write_chunk"
            ),
            Ok(0x1010_8194),
            "a method of an impl block in another module, as `nm -C` prints it"
        );
        assert_eq!(symbol_address(&elf, "BOOT_STATE"), Ok(0x2000_0400));
        assert_eq!(
            symbol_address(&elf, "ota_core::boot::commit"),
            Ok(0x1000_2000)
        );
    }

    #[test]
    fn missing_ambiguous_and_bad_files_say_why() {
        let elf = arm_elf(&[
            ("mark_booted", 0x1000_0101, STT_FUNC),
            ("dup", 0x10, 1),
            ("dup", 0x20, 1),
        ]);
        let e = symbol_address(&elf, "booted").expect_err("absent");
        assert!(
            matches!(&e, ElfError::NotFound { similar, .. } if similar.contains("mark_booted")),
            "{e}"
        );
        let e = symbol_address(&elf, "dup").expect_err("two addresses");
        assert!(
            e.to_string().contains("0x10") && e.to_string().contains("0x20"),
            "{e}"
        );
        assert_eq!(symbol_address(b"MZ\0\0", "x"), Err(ElfError::NotElf));
        let truncated = &elf[..60];
        assert!(matches!(
            symbol_address(truncated, "mark_booted"),
            Err(ElfError::Corrupt(_))
        ));
        let mut no_symtab = elf.clone();
        // Turn the symbol table section into a PROGBITS one.
        let shoff = no_symtab.len() - 3 * 40;
        no_symtab[shoff + 40 + 4] = 1;
        assert_eq!(symbol_address(&no_symtab, "x"), Err(ElfError::NoSymbols));
    }

    #[test]
    fn symbol_lookup_in_a_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fw.elf");
        std::fs::write(&path, arm_elf(&[("main", 0x1000_0201, STT_FUNC)])).expect("write");
        assert_eq!(symbol_address_in(&path, "main").ok(), Some(0x1000_0200));
        let e = symbol_address_in(&path, "nope").expect_err("absent");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        let e = symbol_address_in(&dir.path().join("none.elf"), "main").expect_err("no file");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn host_elf64_binary_has_symbols() {
        // The test binary itself: ELF64, little-endian, unstripped in test builds.
        let Ok(exe) = std::env::current_exe().and_then(std::fs::read) else {
            return;
        };
        if exe.get(..4) != Some(b"\x7fELF".as_slice()) {
            return;
        }
        assert!(symbol_address(&exe, "main").is_ok_and(|a| a != 0));
    }
}
