// Package jsonconfig reads the services' configuration files: one strict
// JSON value (unknown fields and trailing data are errors), bounded in size,
// with relative paths resolved against the file's directory. The services'
// config structs (router.ServeConfig, device.ServeConfig) use it, so every
// file reads the same way as repository.Config.
package jsonconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// MaxBytes bounds a configuration file.
const MaxBytes = 1 << 20

// Decode decodes exactly one JSON value from data into v, refusing unknown
// fields and trailing data. Field names must match exactly:
// encoding/json alone would take "acbEui" for "acbEUI". A type or syntax
// error names the field or the byte offset.
func Decode(data []byte, v any) error {
	if len(data) > MaxBytes {
		return fmt.Errorf("larger than %d bytes", MaxBytes)
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err == nil {
		if err := exactKeys(generic, reflect.TypeOf(v), ""); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("field %s: want a JSON %s, got %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// Read reads the file at path, decodes it into v (a pointer to a struct)
// with Decode and resolves its relative paths against the file's directory,
// so that a configuration may sit beside its certificates: a string or
// []string field tagged path:"file" is made absolute when relative (an
// empty value stays empty); one tagged path:"uri" likewise, unless it holds
// a ":" (a URI such as postgres://..., softkms:path=..., pkcs11:..., which
// keeps its own rules). It returns the file's absolute directory. Errors
// name the file.
func Read(path string, v any) (dir string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if err := Decode(data, v); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	dir = filepath.Dir(abs)
	resolveTagged(reflect.ValueOf(v), dir)
	return dir, nil
}

// resolveTagged resolves the path-tagged fields of the struct v points to.
func resolveTagged(v reflect.Value, dir string) {
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	v = v.Elem()
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("path")
		if tag != "file" && tag != "uri" {
			continue
		}
		one := func(s string) string {
			if tag == "uri" && strings.Contains(s, ":") {
				return s
			}
			return Resolve(dir, s)
		}
		switch f := v.Field(i); {
		case f.Kind() == reflect.String:
			f.SetString(one(f.String()))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			for j := range f.Len() {
				f.Index(j).SetString(one(f.Index(j).String()))
			}
		}
	}
}

// Resolve returns p made absolute against dir when p is a relative path,
// and p unchanged when it is empty or absolute.
func Resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// exactKeys reports the first object key in raw (a value decoded into any)
// that names no field of t exactly. Types that decode themselves
// (json.Unmarshaler) are left to their own checks.
func exactKeys(raw any, t reflect.Type, path string) error {
	if t == nil {
		return nil
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return exactKeys(raw, t.Elem(), path)
	case reflect.Slice, reflect.Array:
		l, _ := raw.([]any)
		for i, e := range l {
			if err := exactKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, _ := raw.(map[string]any)
		for k, e := range m {
			if err := exactKeys(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for k, e := range m {
			ft, ok := fields[k]
			if !ok {
				where := ""
				if path != "" {
					where = " in " + path
				}
				for name := range fields {
					if strings.EqualFold(name, k) {
						return fmt.Errorf("unknown field %q%s (names are case-sensitive: did you mean %q?)", k, where, name)
					}
				}
				return fmt.Errorf("unknown field %q%s", k, where)
			}
			if err := exactKeys(e, ft, join(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's fields, as encoding/json spells
// them, to their types, including those of embedded structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// CheckListen reports what is wrong with a host:port listen address, the
// listen field of every service's configuration.
func CheckListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port: %w", addr, err)
	}
	return nil
}

// CheckLogLevel reports a log level that is not one of debug, info, warn
// and error (in any case, as log/slog reads them).
func CheckLogLevel(level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("%q: want debug, info, warn or error", level)
	}
	return nil
}
