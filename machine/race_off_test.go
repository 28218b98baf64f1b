//go:build !race

package machine

const raceBuild = false // see race_on_test.go
