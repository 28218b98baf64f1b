//go:build race

package machine

// raceBuild: the race detector is on. The test guest's `smp` fails in
// process under it (the AP never leaves its first KVM_RUN; seen at
// b7829fe before any snapshot code), so tests that need APs up skip
// that step there.
const raceBuild = true
