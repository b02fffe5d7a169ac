//! SHA-1 (FIPS 180-4 §6.1), hand-written for the XEP-0114 handshake digest and the XEP-0115
//! entity-capabilities verification string.
//!
//! Owns the hash function and nothing else. SHA-1 is not collision resistant; XEP-0114 §3 mandates
//! it for `<handshake/>` and XEP-0115 §5 uses it (`hash='sha-1'`) to name a fixed disco#info
//! answer of ours, and those are its only uses here: never use it for anything security-relevant
//! beyond that. Written by hand rather than adding a crate (docs/design.md §3: a page of our own
//! code over a small dependency). One-shot only: the inputs are a few hundred bytes.

/// FIPS 180-4 §5.3.1: the initial hash value H(0).
const H0: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];

/// FIPS 180-4 §4.2.1: the four round constants, one per group of twenty rounds.
const K: [u32; 4] = [0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc, 0xca62_c1d6];

/// FIPS 180-4 §5.1.1: SHA-1 works on 512-bit (64-byte) blocks.
const BLOCK: usize = 64;

/// Returns the 20-byte SHA-1 digest of `data` (FIPS 180-4 §6.1.2).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h = H0;
    let mut blocks = data.chunks_exact(BLOCK);
    for block in &mut blocks {
        compress(&mut h, block);
    }

    // §5.1.1 padding: a 1 bit, zeros up to 56 mod 64 bytes, then the message length in bits as a
    // 64-bit big-endian integer. The tail is at most 63 bytes, so it pads into one or two blocks.
    let tail = blocks.remainder();
    let mut last = [0u8; 2 * BLOCK];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let padded = if tail.len() < BLOCK - 8 { BLOCK } else { 2 * BLOCK };
    // `usize` to `u64` never truncates on supported targets; the length is taken modulo 2^64.
    let bit_len = (data.len() as u64).wrapping_mul(8);
    last[padded - 8..padded].copy_from_slice(&bit_len.to_be_bytes());
    for block in last[..padded].chunks_exact(BLOCK) {
        compress(&mut h, block);
    }

    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// FIPS 180-4 §6.1.2 steps 1–4: folds one 64-byte block into the hash state.
fn compress(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 80];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for t in 16..80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }

    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (t, &wt) in w.iter().enumerate() {
        // §4.1.1: Ch, Parity, Maj, Parity for rounds 0–19, 20–39, 40–59, 60–79.
        let (f, k) = match t {
            0..=19 => ((b & c) | (!b & d), K[0]),
            20..=39 => (b ^ c ^ d, K[1]),
            40..=59 => ((b & c) | (b & d) | (c & d), K[2]),
            _ => (b ^ c ^ d, K[3]),
        };
        let temp = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wt);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = temp;
    }
    for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
        *hi = hi.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::sha1;

    fn hex(digest: [u8; 20]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_vectors() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn one_million_a() {
        let data = vec![b'a'; 1_000_000];
        assert_eq!(hex(sha1(&data)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    /// Padding edge cases: a tail of 55 bytes still fits the length in the same block, 56 does
    /// not; 63, 64 and 65 straddle the block boundary. Expected values from `sha1sum`.
    #[test]
    fn padding_boundaries() {
        let cases: [(usize, &str, &str); 8] = [
            (55, "c1c8bbdc22796e28c0e15163d20899b65621d65a", "9f3a4ce7f66b1b74c34da2c5d732c39f81e0f8df"),
            (56, "c2db330f6083854c99d4b5bfb6e8f29f201be699", "0a40b8fbdaafb7c29651618ac15d27e772287130"),
            (63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5", "984b0f2f6d78c24020f5a79d409f67ab99302891"),
            (64, "0098ba824b5c16427bd7a1122a5a442a25ec644d", "cf0800f7644ace3cb4c3fa33388d3ba0ea3c8b6e"),
            (65, "11655326c708d70319be2610e8a57d9a5b959d3b", "92de3a8444fe6d15268f0ba810aa43bc8b3a4ffe"),
            (119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56", ""),
            (120, "f34c1488385346a55709ba056ddd08280dd4c6d6", ""),
            (128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0", ""),
        ];
        for (len, all_a, digits) in cases {
            assert_eq!(hex(sha1(&vec![b'a'; len])), all_a, "{len} x 'a'");
            if !digits.is_empty() {
                // "0123456789012…" of the given length.
                let data: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
                assert_eq!(hex(sha1(&data)), digits, "{len} digits");
            }
        }
    }
}
