package flypg

import "errors"

var (
	errNoTxOptions = errors.New("flypg: the wrapped driver does not support transaction options")
	errNamedArgs   = errors.New("flypg: the wrapped driver does not support named arguments")
)
