package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
)

// Command arguments are typed structs. A field whose json tag has
// omitempty is optional; every other field is required. Unknown
// arguments, missing ones and wrong types are refused with QEMU's words
// before the handler runs, so a refused command has no side effect.

// DecodeArgs fills dst (a pointer to a struct) from raw (an object, or
// nil when the command had no arguments), with the rules above; handlers
// use it for nested unions (a "data" member chosen by "type").
func DecodeArgs(raw json.RawMessage, dst any) error { return decodeArgs(raw, dst) }

// decodeArgs is DecodeArgs.
func decodeArgs(raw json.RawMessage, dst any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(raw, &given); err != nil {
		return Errorf(GenericError, "QMP input member 'arguments' must be an object")
	}
	fields := argFields(reflect.TypeOf(dst).Elem())
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := fields[k]; !ok {
			return Errorf(GenericError, "Parameter '%s' is unexpected", k)
		}
	}
	required := make([]string, 0, len(fields))
	for name, optional := range fields {
		if !optional {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	for _, k := range required {
		if v, ok := given[k]; !ok || string(v) == "null" {
			return Errorf(GenericError, "Parameter '%s' is missing", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Errorf(GenericError, "Invalid parameter type for '%s', expected: %s", te.Field, qapiType(te.Type))
		}
		return Errorf(GenericError, "invalid arguments: %v", err)
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// argFields maps a struct's JSON names to whether each is optional.
func argFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}

// qapiType names a Go type the way QEMU's errors name QAPI types.
func qapiType(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}
