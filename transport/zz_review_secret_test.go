package transport

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"testing"
)

func zzRandText(alpha string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alpha))))
		b[i] = alpha[k.Int64()]
	}
	return b
}

func TestZZReviewSecretFalsePositives(t *testing.T) {
	const trials = 400
	for _, n := range []int{32, 64, 128, 256, 384, 420, 512, 1024} {
		raw, hx, b64 := 0, 0, 0
		var why string
		for range trials {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			if err := ValidateSecret(b); err != nil {
				raw++
				why = err.Error()
			}
			if err := ValidateSecret([]byte(hex.EncodeToString(b))); err != nil {
				hx++
			}
			if err := ValidateSecret([]byte(base64.StdEncoding.EncodeToString(b))); err != nil {
				b64++
			}
		}
		t.Logf("random %4d bytes: refused raw %d/%d hex %d/%d base64 %d/%d  %.90s", n, raw, trials, hx, trials, b64, trials, why)
	}
	alphas := map[string]string{
		"alnum":     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		"lowdigit":  "abcdefghijklmnopqrstuvwxyz0123456789",
		"printable": "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
		"digits":    "0123456789",
		"upperdig":  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
	}
	for name, a := range alphas {
		for _, n := range []int{33, 41, 65, 129, 257} {
			bad := 0
			why := ""
			for range trials {
				s := zzRandText(a, n)
				if err := ValidateSecret(s); err != nil {
					bad++
					why = err.Error()
				}
			}
			t.Logf("%-9s len %3d: refused %3d/%d  %.100s", name, n, bad, trials, why)
		}
	}
}
