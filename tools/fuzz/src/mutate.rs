//! Mutations: byte edits, interesting numbers, dictionary tokens, splices between inputs,
//! line edits for text formats, truncation and repetition. No coverage feedback: every
//! choice comes from the run's seeded RNG, so a run is a pure function of its seed.

use rand::Rng;
use rand::rngs::StdRng;

/// Bytes worth trying in any position.
const INTERESTING_8: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, b'\n', b'\r', b'\t', b' ', b'0', b'9', b':', b'-', b'#',
    b'"', b'\'', b'{', b'[', b'%', b'*', b'&', b'!', b'\\', b'.', b'/', b'=',
];

/// Integers worth trying in binary fields (sizes, counts, addresses, lengths).
const INTERESTING_32: &[u32] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x101,
    0x3ff,
    0x400,
    0x1000,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x1_0001,
    0x100_0000,
    0x100_0001,
    0x1000_0000,
    0x1000_0100,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// Numbers worth trying where text holds a number.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "00",
    "0.0",
    ".5",
    "1e3",
    "1e308",
    "1e309",
    "-1e309",
    "NaN",
    ".nan",
    ".inf",
    "-.inf",
    "0x10",
    "0o17",
    "255",
    "256",
    "599",
    "600",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "0.000000000000000000001",
    "1_000",
];

/// How to mutate one target's inputs.
#[derive(Debug)]
pub struct Mutator<'a> {
    /// Tokens to insert or overwrite with (YAML keys, header names, magics ...).
    pub dict: &'a [Vec<u8>],
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Text format: line edits and number rewriting are worth their time.
    pub text: bool,
}

impl Mutator<'_> {
    /// Applies 1, 2, 4 or 8 stacked mutations to `input`; `other` is another input to
    /// splice from.
    pub fn mutate(&self, rng: &mut StdRng, input: &mut Vec<u8>, other: &[u8]) {
        let rounds = 1usize << rng.gen_range(0..4);
        for _ in 0..rounds {
            self.once(rng, input, other);
            if input.len() > self.max_len {
                input.truncate(self.max_len);
            }
        }
    }

    fn once(&self, rng: &mut StdRng, input: &mut Vec<u8>, other: &[u8]) {
        let ops = if self.text { 18 } else { 15 };
        match rng.gen_range(0..ops) {
            0 => flip_bit(rng, input),
            1 => {
                let b = rng.r#gen();
                set_byte(rng, input, b);
            }
            2 => {
                let b = pick(rng, INTERESTING_8);
                set_byte(rng, input, b);
            }
            3 => {
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
                insert(rng, input, &bytes);
            }
            4 => delete_range(rng, input),
            5 | 6 if !self.dict.is_empty() => {
                let token = pick(rng, self.dict);
                if rng.gen_bool(0.5) {
                    insert(rng, input, &token);
                } else {
                    overwrite(rng, input, &token);
                }
            }
            7 => splice(rng, input, other),
            8 => {
                if !input.is_empty() {
                    let at = rng.gen_range(0..input.len());
                    input.truncate(at);
                }
            }
            9 => repeat(rng, input, self.max_len),
            10 => arith_byte(rng, input),
            11 => set_le(rng, input),
            12 => {
                // Swap two ranges' worth of bytes: reorders fields.
                if input.len() >= 2 {
                    let a = rng.gen_range(0..input.len());
                    let b = rng.gen_range(0..input.len());
                    input.swap(a, b);
                }
            }
            13 => {
                // A copy of part of the input elsewhere in it.
                let own = input.clone();
                splice(rng, input, &own);
            }
            14 => {
                // Fill a range with one byte (runs of 0x00, 0xff, spaces ...).
                if !input.is_empty() {
                    let start = rng.gen_range(0..input.len());
                    let len = rng.gen_range(1..=(input.len() - start).min(64));
                    let b = pick(rng, INTERESTING_8);
                    input[start..start + len].fill(b);
                }
            }
            15 => line_edit(rng, input),
            16 => number(rng, input),
            17 => indent(rng, input),
            _ => flip_bit(rng, input),
        }
    }
}

fn pick<T: Clone>(rng: &mut StdRng, from: &[T]) -> T {
    from[rng.gen_range(0..from.len())].clone()
}

fn flip_bit(rng: &mut StdRng, input: &mut [u8]) {
    if !input.is_empty() {
        let at = rng.gen_range(0..input.len());
        input[at] ^= 1 << rng.gen_range(0..8);
    }
}

fn set_byte(rng: &mut StdRng, input: &mut Vec<u8>, b: u8) {
    if input.is_empty() {
        input.push(b);
    } else {
        let at = rng.gen_range(0..input.len());
        input[at] = b;
    }
}

fn arith_byte(rng: &mut StdRng, input: &mut [u8]) {
    if !input.is_empty() {
        let at = rng.gen_range(0..input.len());
        let delta = rng.gen_range(1..=16u8);
        input[at] = if rng.gen_bool(0.5) {
            input[at].wrapping_add(delta)
        } else {
            input[at].wrapping_sub(delta)
        };
    }
}

/// An interesting u16 or u32, little-endian (the byte order of every otarig binary format),
/// at an aligned or unaligned offset.
fn set_le(rng: &mut StdRng, input: &mut [u8]) {
    let v = pick(rng, INTERESTING_32);
    let wide = rng.gen_bool(0.5);
    let width = if wide { 4 } else { 2 };
    if input.len() < width {
        return;
    }
    let mut at = rng.gen_range(0..=input.len() - width);
    if rng.gen_bool(0.75) {
        at &= !(width - 1);
    }
    let bytes = v.to_le_bytes();
    let bytes: &[u8] = if wide { &bytes } else { &bytes[..2] };
    input[at..at + width].copy_from_slice(bytes);
}

fn insert(rng: &mut StdRng, input: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.gen_range(0..=input.len());
    input.splice(at..at, bytes.iter().copied());
}

fn overwrite(rng: &mut StdRng, input: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.gen_range(0..=input.len());
    let end = (at + bytes.len()).min(input.len());
    input.splice(at..end, bytes.iter().copied());
}

fn delete_range(rng: &mut StdRng, input: &mut Vec<u8>) {
    if input.is_empty() {
        return;
    }
    let start = rng.gen_range(0..input.len());
    let max = (input.len() - start).min(input.len() / 4 + 1);
    let len = rng.gen_range(1..=max);
    input.drain(start..start + len);
}

/// Inserts or overwrites with a random range of `other`.
fn splice(rng: &mut StdRng, input: &mut Vec<u8>, other: &[u8]) {
    if other.is_empty() {
        return;
    }
    let start = rng.gen_range(0..other.len());
    let len = rng.gen_range(1..=(other.len() - start).min(256));
    let piece = &other[start..start + len];
    if rng.gen_bool(0.5) {
        insert(rng, input, piece);
    } else {
        overwrite(rng, input, piece);
    }
}

/// Repeats a range 2 to 64 times, or until the input is near its size limit (blow-ups:
/// deep nesting, many headers, long lines).
fn repeat(rng: &mut StdRng, input: &mut Vec<u8>, max_len: usize) {
    if input.is_empty() {
        return;
    }
    let start = rng.gen_range(0..input.len());
    let len = rng.gen_range(1..=(input.len() - start).min(64));
    let piece = input[start..start + len].to_vec();
    let times = if rng.gen_bool(0.1) {
        max_len.saturating_sub(input.len()) / len
    } else {
        rng.gen_range(2..=64)
    };
    let at = start + len;
    let extra: Vec<u8> = piece.iter().copied().cycle().take(len * times).collect();
    input.splice(at..at, extra);
}

/// Line starts (offsets) of a text input.
fn line_starts(input: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            input
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|&i| i <= input.len())
        .collect()
}

/// Deletes, duplicates or moves one line.
fn line_edit(rng: &mut StdRng, input: &mut Vec<u8>) {
    let starts = line_starts(input);
    let i = rng.gen_range(0..starts.len());
    let start = starts[i];
    let end = starts.get(i + 1).copied().unwrap_or(input.len());
    let line = input[start..end].to_vec();
    match rng.gen_range(0..3) {
        0 => {
            input.drain(start..end);
        }
        1 => {
            input.splice(start..start, line);
        }
        _ => {
            input.drain(start..end);
            let starts = line_starts(input);
            let to = pick(rng, &starts);
            input.splice(to..to, line);
        }
    }
}

/// Changes one line's indentation (YAML structure lives there).
fn indent(rng: &mut StdRng, input: &mut Vec<u8>) {
    let starts = line_starts(input);
    let at = pick(rng, &starts);
    if rng.gen_bool(0.5) {
        let n = pick(rng, &[1usize, 2, 4]);
        input.splice(at..at, std::iter::repeat_n(b' ', n));
    } else {
        let spaces = input[at..].iter().take_while(|&&b| b == b' ').count();
        if spaces > 0 {
            let n = rng.gen_range(1..=spaces);
            input.drain(at..at + n);
        }
    }
}

/// Replaces a run of digits with an interesting number.
fn number(rng: &mut StdRng, input: &mut Vec<u8>) {
    let digits: Vec<usize> = input
        .iter()
        .enumerate()
        .filter(|&(i, b)| b.is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    if digits.is_empty() {
        return;
    }
    let start = pick(rng, &digits);
    let len = input[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    let with = pick(rng, INTERESTING_NUMBERS);
    input.splice(start..start + len, with.bytes());
}

/// Tokens for a dictionary, harvested from text seeds: words (`[A-Za-z0-9_-]`, 2 to 32
/// bytes), and `word:` / `word=` forms where the seed writes them so.
pub fn harvest(seeds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = std::collections::BTreeSet::new();
    for seed in seeds {
        let mut i = 0;
        while i < seed.len() {
            let word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
            if !word(&seed[i]) {
                i += 1;
                continue;
            }
            let len = seed[i..].iter().take_while(|b| word(b)).count();
            if (2..=32).contains(&len) {
                out.insert(seed[i..i + len].to_vec());
                if let Some(&sep @ (b':' | b'=')) = seed.get(i + len) {
                    let mut t = seed[i..i + len].to_vec();
                    t.push(sep);
                    if sep == b':' {
                        t.push(b' ');
                    }
                    out.insert(t);
                }
            }
            i += len;
        }
    }
    out.into_iter().take(4096).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mutations_respect_the_size_limit_and_are_deterministic() {
        let dict = vec![b"key: ".to_vec(), b"\r\n".to_vec()];
        let m = Mutator {
            dict: &dict,
            max_len: 300,
            text: true,
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut out = Vec::new();
            for _ in 0..2000 {
                let mut input = b"a: 1\nb:\n  - c: 22\n".to_vec();
                m.mutate(&mut rng, &mut input, b"other: [x, y]\n");
                assert!(input.len() <= 300);
                out.push(input);
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn harvest_finds_keys() {
        let d = harvest(&[b"given: { firmware: v1 }\nreset=panic".to_vec()]);
        assert!(d.contains(&b"given: ".to_vec()));
        assert!(d.contains(&b"firmware".to_vec()));
        assert!(d.contains(&b"reset=".to_vec()));
    }
}
