package base

import "github.com/kivuli-go/kivuli/internal/bytesize"

// SizeFlag is a byte count given as 5GiB, 100MB, 1M or 65536: the IEC
// units (KiB, MiB, GiB, TiB) and the bare letters (K, M, G, T, as nginx
// and curl read them) are powers of 1024, the SI units (KB, MB, GB, TB)
// powers of 1000.
type SizeFlag struct {
	N   int64
	Raw string
}

func (s *SizeFlag) String() string { return s.Raw }
func (s *SizeFlag) Type() string   { return "size" }

func (s *SizeFlag) Set(v string) error {
	n, err := bytesize.Parse(v)
	if err != nil {
		return err
	}
	s.N, s.Raw = n, v
	return nil
}

// FormatSize writes n in the largest binary unit that divides it.
func FormatSize(n int64) string { return bytesize.Format(n) }
