//! A command's argument as Redis passes it: borrowed for the call, never
//! copied or retained.

use crate::api::api;
use redis_module::{raw, RedisString};
use std::os::raw::c_longlong;

/// One element of the `argv` Redis hands a command, laid out as a pointer
/// so that `argv` itself can be read as `&[Arg]`.
#[repr(transparent)]
pub struct Arg(*mut raw::RedisModuleString);

impl Arg {
    pub fn as_slice(&self) -> &[u8] {
        let mut len = 0;
        // SAFETY: Redis keeps argv alive for the whole command.
        unsafe {
            let data = api!(RedisModule_StringPtrLen)(self.0, &mut len);
            std::slice::from_raw_parts(data.cast::<u8>(), len)
        }
    }

    /// The argument as Redis parses integers: no spaces, no `+`, no leading
    /// zeros, within an i64.
    pub fn parse_integer(&self) -> Option<i64> {
        let mut value: c_longlong = 0;
        // SAFETY: as above; `value` outlives the call.
        let status = unsafe { api!(RedisModule_StringToLongLong)(self.0, &mut value) };
        (status == raw::REDISMODULE_OK as i32).then_some(value)
    }
}

/// Something that is a Redis string to the key API and to `RM_Replicate`.
pub trait ModuleString {
    fn ptr(&self) -> *mut raw::RedisModuleString;
}

impl ModuleString for Arg {
    fn ptr(&self) -> *mut raw::RedisModuleString {
        self.0
    }
}

impl ModuleString for RedisString {
    fn ptr(&self) -> *mut raw::RedisModuleString {
        self.inner
    }
}

impl<T: ModuleString> ModuleString for &T {
    fn ptr(&self) -> *mut raw::RedisModuleString {
        (*self).ptr()
    }
}
