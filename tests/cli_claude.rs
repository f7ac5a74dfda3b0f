//! The claude preset against the real CLI and the scripted model service.

#[allow(unused_imports)]
use crate::common;
