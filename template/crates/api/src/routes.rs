//! Native handlers, one module per resource, wired to paths by the `[[route]]`s of rspy.toml.
{% if python_service == "sample" %}
pub mod hello;
{% endif %}