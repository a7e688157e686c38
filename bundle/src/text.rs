//! Bounding input text before it reaches a tokenizer: tokenizing a whole
//! megabyte line to keep its first 128 tokens costs hundreds of megabytes.

/// Bytes kept per token of `max_seq_len`: far more than a token covers
/// (a CJK character is 3 bytes, a WordPiece token a few letters; an
/// [UNK] word at most 100 characters), so a cut only drops text that
/// truncation would drop anyway.
pub const BYTES_PER_TOKEN: usize = 32;

/// The prefix of `text` a tokenizer needs for `max_seq_len` tokens, cut at
/// a character boundary, and whether anything was cut.
pub fn cut_for_tokenizer(text: &str, max_seq_len: usize) -> (&str, bool) {
    let bound = max_seq_len.saturating_mul(BYTES_PER_TOKEN).max(BYTES_PER_TOKEN);
    if text.len() <= bound {
        return (text, false);
    }
    let mut end = bound;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_kept_and_long_ones_cut_at_a_character_boundary() {
        assert_eq!(cut_for_tokenizer("很好", 8), ("很好", false));
        let long = "好".repeat(1000); // 3 bytes each
        let (cut, was_cut) = cut_for_tokenizer(&long, 8);
        assert!(was_cut);
        assert!(cut.len() <= 8 * BYTES_PER_TOKEN && cut.len() > 8 * BYTES_PER_TOKEN - 3);
        assert_eq!(cut.chars().count() * 3, cut.len(), "no character is split");
        assert!(cut.chars().count() > 8, "keeps more characters than tokens");
    }
}
