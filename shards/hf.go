package shards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Hugging Face datasets reads a Parquet file's key-value metadata "huggingface",
// {"info": {"features": {...}}}, to give columns types beyond Arrow's: this is
// how the image column becomes an Image that decodes to a PIL image. The
// features are generated from the Go row type, so new columns are covered.
//
// Serialisation follows datasets' Features.to_dict() in the form that datasets
// 2.x, 3.x and 4.x all read:
//
//	string, []byte, intN, uintN, floatN, bool -> {"dtype": "string", "_type": "Value"} ("binary", "int32", ...)
//	Image                                      -> {"_type": "Image"}
//	struct                                     -> {"field": feature, ...}
//	[]T (T not a struct)                       -> {"feature": feature(T), "_type": "Sequence"}
//	[]struct                                   -> [feature(struct)]
//
// datasets applies a feature only where its Arrow type equals the file's column
// type, nullability included; elsewhere it infers the same Value types from the
// schema. That is why Row.Image is an optional column with optional fields.

// HFFeatures returns the Hugging Face features JSON object for the Parquet
// row type of v (a struct or a pointer to one), columns in schema order.
func HFFeatures(v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("shards: Hugging Face features of %T: want a struct", v)
	}
	var buf bytes.Buffer
	if err := hfStruct(&buf, t); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// HFMetadata returns the value of the "huggingface" key-value metadata for the
// row type of v: {"info":{"features":...}}.
func HFMetadata(v any) (string, error) {
	f, err := HFFeatures(v)
	if err != nil {
		return "", err
	}
	return `{"info":{"features":` + string(f) + `}}`, nil
}

var imageType = reflect.TypeFor[Image]()

func hfStruct(buf *bytes.Buffer, t reflect.Type) error {
	buf.WriteByte('{')
	n := 0
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := parquetName(f)
		if !ok {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(name)
		buf.Write(k)
		buf.WriteByte(':')
		if err := hfFeature(buf, f.Type); err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
	}
	buf.WriteByte('}')
	return nil
}

func hfFeature(buf *bytes.Buffer, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == imageType {
		buf.WriteString(`{"_type":"Image"}`)
		return nil
	}
	if dtype := hfDtype(t); dtype != "" {
		fmt.Fprintf(buf, `{"dtype":%q,"_type":"Value"}`, dtype)
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return hfStruct(buf, t)
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct && e != imageType {
			buf.WriteByte('[')
			if err := hfStruct(buf, e); err != nil {
				return err
			}
			buf.WriteByte(']')
			return nil
		}
		buf.WriteString(`{"feature":`)
		if err := hfFeature(buf, e); err != nil {
			return err
		}
		buf.WriteString(`,"_type":"Sequence"}`)
		return nil
	}
	return fmt.Errorf("no Hugging Face feature for Go type %s; extend hfFeature", t)
}

// hfDtype is the datasets Value dtype of a Go scalar type, "" if none.
func hfDtype(t reflect.Type) string {
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		return "binary"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return strings.ToLower(t.Kind().String())
	case reflect.Int:
		return "int64"
	case reflect.Uint:
		return "uint64"
	}
	return ""
}

// parquetName is the column name of a struct field as parquet-go names it, and
// false for fields that are not columns.
func parquetName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("parquet")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}
