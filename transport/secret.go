package transport

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// MinSecretBytes is the least randomness a cluster secret must carry.
const MinSecretBytes = 32

// secretHowTo ends every refusal: how to make a good secret.
const secretHowTo = "generate one with `openssl rand -base64 32` (or `flypg-lab secret`) and set the same value on every node"

// ValidateSecret reports whether secret can key a cluster: everything on the
// link and in gossip is only as strong as it is. It returns nil or an error
// wrapping ErrWeakSecret that says what is wrong (never what the secret is)
// and how to make a good one. Start calls it unless
// Config.InsecureSkipSecretCheck is set.
//
// What is accepted, precisely:
//   - Hex text (only 0-9, a-f, A-F, even length): the bytes it decodes to
//     are judged, and there must be at least 32 of them (64 hex digits).
//   - Otherwise base64 text, standard or URL alphabet, padded or not, that
//     decodes exactly: the decoded bytes are judged, at least 32 of them
//     (`openssl rand -base64 32` prints 44 characters).
//   - Otherwise the bytes themselves, at least 32 of them, judged as they
//     are. Text reads like words when it is mostly lowercase letters and
//     spaces, or for the most part runs of four or more letters that are
//     all lowercase or capitalised, as in "Correct-Horse-Battery".
//   - Text with leading or trailing white space is refused (a newline from
//     a file would make nodes disagree).
//
// Judged bytes are refused as not random when they have fewer than 16
// distinct values, a repeating pattern (fewer than three quarters of their
// 4-byte windows distinct), or in their first 64 bytes the same byte four
// or more times in a row or a counting sequence (for some k from 1 to 4,
// the steps b[i+k]-b[i] take fewer distinct values than a quarter of their
// number). Printable text — given as is or decoded from hex or base64 — is
// refused too when it reads like words (three in four of its letter pairs
// common in English words, see wordLike) or walks over the keyboard (half its steps to the same or a
// neighbouring key). Random bytes pass these with overwhelming
// probability: none of 20,000 each of 32 to 4096 random bytes, raw, hex or
// base64, was refused. Random text is refused now and then (a character
// four times in a row, or letters that happen to read like words), so
// prefer bytes from a generator: of 20,000 each of 33 to 257 characters,
// 0.005% of printable, 0.03% of alphanumeric, 0.12% of lowercase+digit or
// uppercase+digit and 0.6% of lowercase-only strings were. The secret is
// used as given, text or not: nodes must hold the same bytes.
func ValidateSecret(secret []byte) error {
	weak := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s; %s", ErrWeakSecret, fmt.Sprintf(format, args...), secretHowTo)
	}
	if len(secret) == 0 {
		return weak("no secret is set")
	}
	if trimmed := bytes.TrimSpace(secret); len(trimmed) != len(secret) && len(trimmed) > 0 && isPrintable(trimmed) {
		return weak("the secret has leading or trailing white space (a newline from a file?); strip it")
	}
	if enc, decoded := decodeText(secret); enc != "" {
		if len(decoded) < MinSecretBytes {
			return weak("the secret is %s text of %d bytes; it must encode at least %d random bytes", enc, len(decoded), MinSecretBytes)
		}
		if why := notRandom(decoded); why != "" {
			return weak("the %s text does not encode random bytes: %s", enc, why)
		}
		if isPrintable(decoded) && (wordLike(decoded) || keyboardWalk(decoded)) {
			return weak("the %s text encodes words or a passphrase, which a dictionary attack guesses", enc)
		}
		return nil
	}
	if len(secret) < MinSecretBytes {
		return weak("the secret is %d bytes; at least %d random bytes are required", len(secret), MinSecretBytes)
	}
	if why := notRandom(secret); why != "" {
		return weak("the secret is not random: %s", why)
	}
	if isPrintable(secret) && wordLike(secret) {
		return weak("the secret reads like words or a passphrase, which a dictionary attack guesses")
	}
	if isPrintable(secret) && keyboardWalk(secret) {
		return weak("the secret is a walk over the keyboard, which a dictionary attack guesses")
	}
	return nil
}

// decodeText decodes hex or base64 text; enc is "" when secret is neither.
func decodeText(secret []byte) (enc string, decoded []byte) {
	s := string(secret)
	if len(s)%2 == 0 && isHex(s) {
		b, err := hex.DecodeString(s)
		if err == nil {
			return "hex", b
		}
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := e.Strict().DecodeString(s); err == nil && len(b) > 0 {
			return "base64", b
		}
	}
	return "", nil
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return len(s) > 0
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// notRandom explains why b does not look like the output of a random
// generator, or returns "".
func notRandom(b []byte) string {
	var seen [256]bool
	distinct := 0
	run, longest := 0, 0
	for i, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		if i >= 64 {
			continue // runs are judged in the first 64 bytes, like steps below
		}
		if i > 0 && c == b[i-1] {
			run++
		} else {
			run = 1
		}
		longest = max(longest, run)
	}
	switch {
	case distinct < 16:
		return fmt.Sprintf("only %d distinct byte values", distinct)
	case longest >= 4:
		return fmt.Sprintf("one byte %d times in a row", longest)
	}
	windows := len(b) - 3
	grams := make(map[[4]byte]struct{}, windows)
	for i := range windows {
		grams[[4]byte(b[i:i+4])] = struct{}{}
	}
	if 4*len(grams) < 3*windows {
		return "a repeating pattern"
	}
	// A counter or a progression — "abcd…", 00 01 02 …, the base64
	// alphabet decoded (a 6-bit counter, which steps alike every 3 bytes) —
	// repeats its steps: b[i+k]-b[i] takes few values for some small k.
	// Random bytes give about as many distinct steps as there are, while
	// there are far fewer than 256 of them: so only the first 64 bytes are
	// judged (a long secret has at most 256 distinct steps, and a long
	// counter starts like a short one).
	head := b[:min(len(b), 64)]
	for k := 1; k <= 4; k++ {
		var steps [256]bool
		n, distinct := len(head)-k, 0
		for i := range n {
			d := head[i+k] - head[i]
			if !steps[d] {
				steps[d] = true
				distinct++
			}
		}
		if 4*distinct < n {
			return "a counting sequence or progression"
		}
	}
	return ""
}

// keyboardRows is the US layout, unshifted and shifted, for keyboardWalk.
var keyboardRows = [...][2]string{
	{"`1234567890-=", "~!@#$%^&*()_+"},
	{"\x00qwertyuiop[]", "\x00QWERTYUIOP{}"},
	{"\x00asdfghjkl;'", "\x00ASDFGHJKL:\""},
	{"\x00zxcvbnm,./", "\x00ZXCVBNM<>?"},
}

// keyboardWalk reports text most of whose steps go to the same or a
// neighbouring key ("1qaz2wsx…", "qwertyuiop", "asdfjkl;"): a pattern
// people type, which guessing tools try first. Random printable text
// steps to a neighbour about one time in ten.
func keyboardWalk(b []byte) bool {
	type pos struct{ row, col int }
	var at [128]pos
	var known [128]bool
	for r, row := range keyboardRows {
		for _, s := range row {
			for c := 1; c < len(s); c++ { // column 0 is the key left of the row
				at[s[c]], known[s[c]] = pos{r, c}, true
			}
			at[s[0]], known[s[0]] = pos{r, 0}, r == 0
		}
	}
	near, steps := 0, 0
	for i := 1; i < len(b); i++ {
		x, y := b[i-1], b[i]
		if x >= 128 || y >= 128 || !known[x] || !known[y] {
			continue
		}
		steps++
		p, q := at[x], at[y]
		if abs(p.row-q.row) <= 1 && abs(p.col-q.col) <= 1 {
			near++
		}
	}
	return steps > 0 && 2*near >= len(b)-1
}

func abs(n int) int { return max(n, -n) }

// wordLike reports text that a person rather than a generator wrote: its
// words (split at anything but a letter, and before a capital that follows
// a lowercase letter, as in CamelCase) are made of the letter pairs words
// are made of. At least 20 pairs must be there to judge, and three in four
// must be common ones (commonPairs): English text scores about nine in
// ten, random letters about one in three — of 20,000 random strings each
// of 33 to 257 characters over several alphabets, a handful scored three
// in four.
func wordLike(b []byte) bool {
	pairs, common := 0, 0
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && isLetter(b[j]) && !(j > i && isUpper(b[j]) && !isUpper(b[j-1])) {
			j++
		}
		for k := i + 1; k < j; k++ {
			pairs++
			if commonPair[lower(b[k-1])-'a'][lower(b[k])-'a'] {
				common++
			}
		}
		i = max(j, i+1)
	}
	return pairs >= 20 && 4*common >= 3*pairs
}

func lower(c byte) byte { return c | 0x20 }

// commonPairs are the letter pairs that make up 97% of those in this
// project's English documentation (234 of the 676).
const commonPairs = `
ab ac ad af ag ai ak al am an ap ar as at au av aw ax ay ba be bl bo bu by ca ce ch ck cl co cr
ct cu da db dd de di dl do dr ds dv ea ec ed ee ef eg ei el em en eo ep eq er es et ev ew ex ey
fa fe fi fl fo fr ft fu ga ge gh gi go gr gu gx ha he hi ho ht ib ic id ie if ig il im in io ip
ir is it iv ke ki kn ks la ld le li ll lo ls lt lu ly ma md me mi mm mo mp ms na nc nd ne nf ng
ni nk nl nn no ns nt ny oc od oe of og ok ol om on oo op or os ot ou ov ow pa pe pg pi pl po pp
pr ps pt ql qu ra rd re rg ri rl rm rn ro rr rs rt ru rv rw ry sa se sh si sn so sp sq ss st su
sw ta tc te tg th ti tl to tp tr ts tt tu tx ty ue ug ul um un up ur us ut va ve vi wa we wh wi
wn wo wr ws xt ye yo yp ys yt
`

var commonPair = func() (t [26][26]bool) {
	for _, p := range strings.Fields(commonPairs) {
		t[p[0]-'a'][p[1]-'a'] = true
	}
	return t
}()

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
