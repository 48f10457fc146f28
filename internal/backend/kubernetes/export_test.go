package kubernetes

// BindCheckReuse is bindCheckReuse, for the tests of the bind check's reuse.
const BindCheckReuse = bindCheckReuse
