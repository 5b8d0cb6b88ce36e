//! `options::parse` on arbitrary words (docs/commands.md#options): it
//! never panics, and accepts exactly what a plain reading of the grammar
//! accepts — each allowed keyword (any case) at most once, each with its
//! value, LIMIT's value optionally followed by EVICT or REJECT — with every
//! position pointing at the value that follows its keyword.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sessiongate::options::{self, Keyword, Options, Policy};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    words: Vec<Word<'a>>,
    allowed: u8,
}

#[derive(Arbitrary, Debug)]
enum Word<'a> {
    Known(u8, bool),
    Any(&'a [u8]),
}

const SPELLINGS: [&str; 6] = ["maxlife", "label", "limit", "ttl", "evict", "reject"];
const KEYWORDS: [Keyword; 4] = [Keyword::Maxlife, Keyword::Label, Keyword::Limit, Keyword::Ttl];

fuzz_target!(|input: Input| {
    let words: Vec<Vec<u8>> = input
        .words
        .iter()
        .map(|word| match word {
            Word::Known(pick, upper) => {
                let word = SPELLINGS[usize::from(*pick) % SPELLINGS.len()];
                if *upper { word.to_uppercase() } else { word.to_string() }.into_bytes()
            }
            Word::Any(bytes) => bytes.to_vec(),
        })
        .collect();
    let allowed: Vec<Keyword> = KEYWORDS
        .iter()
        .enumerate()
        .filter(|(at, _)| input.allowed >> at & 1 == 1)
        .map(|(_, keyword)| *keyword)
        .collect();
    let slices: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
    assert_eq!(options::parse(&slices, &allowed), reference(&slices, &allowed));
});

/// The grammar read plainly, one word at a time.
fn reference(words: &[&[u8]], allowed: &[Keyword]) -> Option<Options> {
    let mut options = Options::default();
    let mut rest = words.iter().enumerate().peekable();
    while let Some((_, word)) = rest.next() {
        let keyword = KEYWORDS.iter().zip(["MAXLIFE", "LABEL", "LIMIT", "TTL"]).find_map(
            |(keyword, name)| (word.to_ascii_uppercase() == name.as_bytes()).then_some(*keyword),
        )?;
        if !allowed.contains(&keyword) {
            return None;
        }
        let (value, _) = rest.next()?;
        match keyword {
            Keyword::Maxlife if options.maxlife.is_none() => options.maxlife = Some(value),
            Keyword::Label if options.label.is_none() => options.label = Some(value),
            Keyword::Ttl if options.ttl.is_none() => options.ttl = Some(value),
            Keyword::Limit if options.limit.is_none() => {
                let policy = match rest.peek().map(|(_, w)| w.to_ascii_uppercase()) {
                    Some(w) if w == b"EVICT" => Some(Policy::Evict),
                    Some(w) if w == b"REJECT" => Some(Policy::Reject),
                    _ => None,
                };
                if policy.is_some() {
                    rest.next();
                }
                options.limit = Some((value, policy.unwrap_or(Policy::Evict)));
            }
            _ => return None,
        }
    }
    Some(options)
}
