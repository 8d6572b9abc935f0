package control

import (
	"encoding/json"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeRequest parses a request line, a JSON array of strings. The snapshot
// function sends its arguments' bytes as they are, and a file name or raw
// input need not be UTF-8; json.Unmarshal would turn every such byte into
// U+FFFD, so that the name no longer matches its file and two different
// inputs hash alike. Such a line is therefore decoded keeping its bytes.
func decodeRequest(line []byte) ([]string, error) {
	var req []string
	if utf8.Valid(line) {
		err := json.Unmarshal(line, &req)
		return req, err
	}
	// The syntax is checked here; RawMessage keeps the bytes.
	var elems []json.RawMessage
	if err := json.Unmarshal(line, &elems); err != nil {
		return nil, err
	}
	for _, e := range elems {
		s, ok := unquote(e)
		if !ok {
			return nil, &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeFor[string]()}
		}
		req = append(req, s)
	}
	return req, nil
}

// unquote returns the string a valid JSON string literal stands for, with
// bytes that are not UTF-8 kept as they are, or false when q is not a
// string.
func unquote(q []byte) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	q = q[1 : len(q)-1]
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		if q[i] != '\\' {
			b = append(b, q[i])
			continue
		}
		i++ // the literal is valid: an escape is complete
		switch q[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(q[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) && i+6 < len(q) && q[i+1] == '\\' && q[i+2] == 'u' {
				if pair := utf16.DecodeRune(r, hex4(q[i+3:i+7])); pair != utf8.RuneError {
					r = pair
					i += 6
				}
			}
			b = utf8.AppendRune(b, r) // a lone surrogate becomes U+FFFD, as in encoding/json
		default: // '"', '\\', '/'
			b = append(b, q[i])
		}
	}
	return string(b), true
}

func hex4(h []byte) rune {
	n, _ := strconv.ParseUint(string(h), 16, 32)
	return rune(n)
}
