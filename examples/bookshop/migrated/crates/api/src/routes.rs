//! Native handlers, one module per resource, wired to paths by the `[[route]]`s of rspy.toml.

pub mod isbn;
pub mod shipping;
