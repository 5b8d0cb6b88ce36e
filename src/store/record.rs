//! A v2 session's record, the value of its hash's field `""`
//! (docs/keys.md#v2-record): what step 9 compares (the binding), when the
//! session was created, and the lifecycle's deadline, owner, owner
//! namespace and label. Pure, so it is unit-tested and fuzzed without a
//! server.
//!
//! The layout, all integers big-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format, `1` |
//! | 32 | the binding: the token signature's first 32 hex characters |
//! | 8 | `created`, Unix ms, signed |
//! | then, each at most once and in this order: | |
//! | `d` + 8 | `deadline`, Unix ms, signed |
//! | `o` + 2 + n | `owner`, 1 to 512 bytes, then `n` + 1 + m: its namespace, 1 to 255 bytes |
//! | `l` + 2 + n | `label`, 1 to 512 bytes |
//!
//! Anything else (another format, a short field, a length out of range,
//! a field out of order, bytes left over) is unreadable: `decode` answers
//! `None`, never panics.

pub const FORMAT: u8 = 1;
pub const BINDING_LEN: usize = 32;
pub const MAX_OWNER_LEN: usize = 512;
pub const MAX_LABEL_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub binding: &'a [u8; BINDING_LEN],
    pub created: i64,
    pub deadline: Option<i64>,
    pub owner: Option<Owner<'a>>,
    pub label: Option<&'a [u8]>,
}

/// Whose session it is, and in which application's index (docs/keys.md#owner-index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub name: &'a [u8],
    pub namespace: &'a [u8],
}

impl<'a> Record<'a> {
    pub fn new(binding: &'a [u8; BINDING_LEN], created: i64) -> Self {
        Record {
            binding,
            created,
            deadline: None,
            owner: None,
            label: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + BINDING_LEN + 8);
        out.push(FORMAT);
        out.extend_from_slice(self.binding);
        out.extend_from_slice(&self.created.to_be_bytes());
        if let Some(deadline) = self.deadline {
            out.push(b'd');
            out.extend_from_slice(&deadline.to_be_bytes());
        }
        if let Some(owner) = self.owner {
            out.push(b'o');
            put_u16_prefixed(&mut out, owner.name);
            out.push(clamp_len(owner.namespace.len(), 255) as u8);
            out.extend_from_slice(&owner.namespace[..clamp_len(owner.namespace.len(), 255)]);
        }
        if let Some(label) = self.label {
            out.push(b'l');
            put_u16_prefixed(&mut out, label);
        }
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        if reader.take(1)? != [FORMAT] {
            return None;
        }
        let binding = reader.take(BINDING_LEN)?.try_into().ok()?;
        let created = reader.i64()?;
        let mut record = Record::new(binding, created);
        if reader.next_is(b'd') {
            record.deadline = Some(reader.i64()?);
        }
        if reader.next_is(b'o') {
            let name = reader.u16_prefixed(MAX_OWNER_LEN)?;
            let len = usize::from(reader.take(1)?[0]);
            let namespace = reader.take(len).filter(|ns| !ns.is_empty())?;
            record.owner = Some(Owner { name, namespace });
        }
        if reader.next_is(b'l') {
            record.label = Some(reader.u16_prefixed(MAX_LABEL_LEN)?);
        }
        reader.0.is_empty().then_some(record)
    }
}

fn clamp_len(len: usize, max: usize) -> usize {
    len.min(max)
}

fn put_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = clamp_len(bytes.len(), usize::from(u16::MAX));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn next_is(&mut self, marker: u8) -> bool {
        let found = self.0.first() == Some(&marker);
        if found {
            self.0 = &self.0[1..];
        }
        found
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u16_prefixed(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?));
        (1..=max).contains(&len).then(|| self.take(len))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINDING: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn every_field_comes_back() {
        let plain = Record::new(BINDING, 1_700_000_000_123);
        let encoded = plain.encode();
        assert_eq!(encoded.len(), 41);
        assert_eq!(encoded[0], FORMAT);
        assert_eq!(Record::decode(&encoded), Some(plain));

        let full = Record {
            deadline: Some(-5),
            owner: Some(Owner {
                name: b"a{b}\0c",
                namespace: b"r.app",
            }),
            label: Some(&[0, 255, b'\n']),
            ..plain
        };
        assert_eq!(Record::decode(&full.encode()), Some(full));
        for (deadline, owner, label) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let some = Record {
                deadline: full.deadline.filter(|_| deadline),
                owner: full.owner.filter(|_| owner),
                label: full.label.filter(|_| label),
                ..plain
            };
            assert_eq!(Record::decode(&some.encode()), Some(some));
        }
    }

    #[test]
    fn anything_else_is_unreadable() {
        let full = Record {
            deadline: Some(7),
            owner: Some(Owner {
                name: b"owner",
                namespace: b"k.0011223344556677",
            }),
            label: Some(b"phone"),
            ..Record::new(BINDING, 1)
        };
        let good = full.encode();
        // Cut between two fields, a record reads with fewer fields; cut
        // inside one, it does not read.
        let between = [41, 50, 50 + 1 + 2 + 5 + 1 + 18];
        for len in 0..good.len() {
            let cut = Record::decode(&good[..len]);
            assert_eq!(cut.is_some(), between.contains(&len), "cut at {len}");
            assert_ne!(cut, Some(full));
        }
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(Record::decode(&extra), None);
        let mut format = good.clone();
        format[0] = 2;
        assert_eq!(Record::decode(&format), None);
        let label_first = [&good[..41], b"l\0\x01x", b"d\0\0\0\0\0\0\0\x07"].concat();
        assert_eq!(Record::decode(&label_first), None, "out of order");
        let empty_owner = [&good[..41], b"o\0\0\x01n"].concat();
        assert_eq!(Record::decode(&empty_owner), None);
        let no_namespace = [&good[..41], b"o\0\x01x\0"].concat();
        assert_eq!(Record::decode(&no_namespace), None);
        let long_label = [&good[..41], b"l\x02\x01", &[b'x'; 513][..]].concat();
        assert_eq!(Record::decode(&long_label), None);
        assert_eq!(Record::decode(b"anything a client HSETs"), None);
    }
}
