// Package bytesize reads and writes byte counts as people write them
// (5GiB, 100MB, 1M, 65536), for the proxy's messages and the kivuli
// command's flags.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes Parse reads: the IEC units (KiB, MiB, GiB, TiB)
// and the bare letters (K, M, G, T, as nginx and curl read them) are
// powers of 1024, the SI units (KB, MB, GB, TB) powers of 1000.
var units = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// Parse reads a byte count such as 5GiB, 100MB, 1M or 65536.
func Parse(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(s, "eExXpP_") {
		return 0, fmt.Errorf("%q is not a size such as 1MiB, 100MB or 5GiB", v)
	}
	if f*float64(mult) >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return int64(f * float64(mult)), nil
}

// Format writes n in the largest binary unit that divides it.
func Format(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
