//! The keyword options of START, OSTART and ROTATE
//! (docs/commands.md#options): their shape only, which is step 1 of the
//! check order. An unknown keyword, a keyword without its value, or one
//! given twice is the arity error, so that `START k 10 x` stays the C
//! module's arity error. The values are checked later, left to right, by
//! the commands. Pure, so that it is unit-tested and fuzzed.

/// Which options a command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `MAXLIFE <seconds>`
    Maxlife,
    /// `LABEL <text>`
    Label,
    /// `LIMIT <n> [EVICT | REJECT]`
    Limit,
    /// `TTL <seconds>`
    Ttl,
}

/// What LIMIT does when the owner already has `n` live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Evict,
    Reject,
}

/// Where each option's value is among the words given: an index into them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub maxlife: Option<usize>,
    pub label: Option<usize>,
    pub limit: Option<(usize, Policy)>,
    pub ttl: Option<usize>,
}

impl Options {
    /// The options' value positions in the order given, for checking their
    /// values left to right.
    pub fn in_order(&self) -> Vec<(usize, Keyword)> {
        let mut given: Vec<(usize, Keyword)> = [
            self.maxlife.map(|at| (at, Keyword::Maxlife)),
            self.label.map(|at| (at, Keyword::Label)),
            self.limit.map(|(at, _)| (at, Keyword::Limit)),
            self.ttl.map(|at| (at, Keyword::Ttl)),
        ]
        .into_iter()
        .flatten()
        .collect();
        given.sort_unstable_by_key(|(at, _)| *at);
        given
    }
}

/// Reads `words` (the arguments after the fixed ones) as options among
/// `allowed`, keywords in any case; `None` for the arity error.
pub fn parse(words: &[&[u8]], allowed: &[Keyword]) -> Option<Options> {
    let mut options = Options::default();
    let mut at = 0;
    while at < words.len() {
        let keyword = keyword(words[at]).filter(|k| allowed.contains(k))?;
        let value = at + 1;
        if value >= words.len() {
            return None;
        }
        at = value + 1;
        let slot = match keyword {
            Keyword::Maxlife => &mut options.maxlife,
            Keyword::Label => &mut options.label,
            Keyword::Ttl => &mut options.ttl,
            Keyword::Limit => {
                if options.limit.is_some() {
                    return None;
                }
                let policy = match words.get(at).and_then(|w| policy(w)) {
                    Some(policy) => {
                        at += 1;
                        policy
                    }
                    None => Policy::Evict,
                };
                options.limit = Some((value, policy));
                continue;
            }
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some(options)
}

fn keyword(word: &[u8]) -> Option<Keyword> {
    [
        (&b"MAXLIFE"[..], Keyword::Maxlife),
        (b"LABEL", Keyword::Label),
        (b"LIMIT", Keyword::Limit),
        (b"TTL", Keyword::Ttl),
    ]
    .into_iter()
    .find_map(|(name, keyword)| word.eq_ignore_ascii_case(name).then_some(keyword))
}

fn policy(word: &[u8]) -> Option<Policy> {
    if word.eq_ignore_ascii_case(b"EVICT") {
        Some(Policy::Evict)
    } else if word.eq_ignore_ascii_case(b"REJECT") {
        Some(Policy::Reject)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Keyword::*;

    const OSTART: &[Keyword] = &[Maxlife, Label, Limit];

    fn words(text: &str) -> Vec<&[u8]> {
        text.split_whitespace().map(str::as_bytes).collect()
    }

    #[test]
    fn options_are_keywords_in_any_case_and_order() {
        assert_eq!(parse(&[], OSTART), Some(Options::default()));
        let given = parse(&words("label phone MaxLife 60 LIMIT 3 reject"), OSTART).unwrap();
        assert_eq!(
            given,
            Options {
                maxlife: Some(3),
                label: Some(1),
                limit: Some((5, Policy::Reject)),
                ttl: None
            }
        );
        assert_eq!(given.in_order(), vec![(1, Label), (3, Maxlife), (5, Limit)]);
        let evict = parse(&words("LIMIT 3 LABEL x"), OSTART).unwrap();
        assert_eq!(evict.limit, Some((1, Policy::Evict)));
        assert_eq!(evict.label, Some(3));
        assert_eq!(
            parse(&words("LIMIT 3 EVICT"), OSTART).unwrap().limit,
            Some((1, Policy::Evict))
        );
        // A label may be a keyword's spelling: it is a value there.
        assert_eq!(parse(&words("LABEL LIMIT"), OSTART).unwrap().label, Some(1));
    }

    #[test]
    fn an_unknown_missing_or_repeated_option_is_the_arity_error() {
        for bad in [
            "x",
            "MAXLIFE",
            "MAXLIFE 1 MAXLIFE 2",
            "LABEL a label b",
            "LIMIT",
            "LIMIT 1 LIMIT 2",
            "LIMIT 1 REJECT EVICT",
            "TTL 5",
            "MAXLIFE 1 extra",
        ] {
            assert_eq!(parse(&words(bad), OSTART), None, "{bad}");
        }
        assert_eq!(parse(&words("LIMIT 1"), &[Maxlife, Label]), None);
        assert_eq!(parse(&words("TTL 5"), &[Ttl]).unwrap().ttl, Some(1));
    }
}
