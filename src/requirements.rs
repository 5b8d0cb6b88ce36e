//! What the module needs of the server it is loaded into, checked once at
//! load: a server that falls short refuses the module with a line in its
//! log that says why, instead of failing later.

use crate::api;
use redis_module::Context;

/// Redis 7.0.5 is the first release that gives modules RM_GetAbsExpire (and
/// 7.0 the first with argument redaction, which keeps the sign key out of
/// SLOWLOG and MONITOR). Valkey reports its own version, 7.2 and up.
const MINIMUM: (i32, i32, i32) = (7, 0, 5);

pub fn check(ctx: &Context) -> Result<(), String> {
    let version = ctx
        .get_redis_version()
        .map_err(|e| format!("cannot read the server's version: {e}"))?;
    let found = (version.major, version.minor, version.patch);
    if found < MINIMUM {
        return Err(format!(
            "sessiongate needs Redis {}.{}.{} or newer (or Valkey); this server is {}.{}.{}",
            MINIMUM.0, MINIMUM.1, MINIMUM.2, found.0, found.1, found.2
        ));
    }
    match api::first_missing() {
        Some(missing) => Err(format!(
            "sessiongate cannot load: this server lacks {missing}"
        )),
        None => Ok(()),
    }
}
