//! New tokens and their sessions (docs/tokens.md#minting). A v1 token's
//! slot is wherever its HMAC falls, so in a cluster ids are drawn until one
//! lands in a slot this node serves; a v2 token names its slot, so it takes
//! a served slot's tag and draws a new id only when one is taken.

use crate::cluster::Served;
use crate::error::Rejection;
use crate::lifecycle::Extras;
use crate::stats;
use crate::store::record::Record;
use crate::store::{self, Claim};
use crate::token::{self, v2, Minted, Tag, Version};

/// A new token signed with `secret`, its session created to expire at
/// `expires_at` (a ttl of 0, `None`, is a session over before it starts:
/// nothing is stored). `now` is the command's clock reading: a v2 record's
/// `created`, from which its expiry and deadline were counted.
pub fn mint(
    ctx: &redis_module::Context,
    secret: &[u8],
    version: Version,
    expires_at: Option<i64>,
    extras: &Extras,
    now: i64,
) -> Result<Minted, Rejection> {
    let mut served = Served::now(ctx, now).ok_or(Rejection::NoServedSlot)?;
    let mut rng = rand::rng();
    while served.next_draw() {
        let id = token::random_id(&mut rng);
        stats::IDS_DRAWN.incr();
        let (minted, claim, slot) = match version {
            Version::V1 => {
                let minted = token::format(&id, &token::sign(secret, &id));
                if !served.includes(&minted) {
                    continue;
                }
                let claim = store::claim_v1(ctx, &minted, expires_at);
                (token::minted_v1(&minted), claim, None)
            }
            Version::V2 => {
                let slot = served
                    .random_slot(&mut rng)
                    .ok_or(Rejection::NoServedSlot)?;
                let tag = Tag::of_slot(slot).ok_or(Rejection::NoServedSlot)?;
                let signature = v2::sign(secret, tag, &id);
                let binding = token::first_half(&signature);
                let record = Record {
                    deadline: extras.deadline,
                    label: extras.label,
                    ..Record::new(&binding, now)
                };
                let claim = store::claim_v2(ctx, tag, &id, &record, expires_at);
                // Not slot_of the whole v2 token: its hash tag is `tag`.
                (v2::format(tag, &id, &signature), claim, Some(slot))
            }
        };
        match claim {
            Claim::Created => return Ok(minted),
            Claim::Taken => {}
            Claim::NotServedHere => {
                // The whole v1 token is its keys' hash tag.
                let slot = slot.unwrap_or_else(|| token::slot_of(&minted));
                if !served.proved_stale(ctx, slot, now) {
                    return Err(Rejection::NoServedSlot);
                }
            }
        }
    }
    Err(Rejection::NoFreeId)
}
