// Go's readings of a request body, as a Go upstream (net/http + encoding/json, as Ollama and
// LocalAI are) would make them.
//
// One example per line on stdin: {"kind": "json" | "form", "body": <base64>, "content_type"}.
// One answer per line on stdout: {"<reader>": {"model": [...], "stream": [...], "user": [...]}
// or {"error": "..."}}, each list holding every value that reader read for the field.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"sort"
)

type example struct {
	Kind        string `json:"kind"`
	Body        []byte `json:"body"` // base64, as encoding/json reads []byte
	ContentType string `json:"content_type"`
}

// A request struct as upstreams declare it: encoding/json matches its keys case-insensitively.
type request struct {
	Model  json.RawMessage `json:"model"`
	Stream json.RawMessage `json:"stream"`
	User   json.RawMessage `json:"user"`
}

type reading map[string]any

func raw(values ...json.RawMessage) []any {
	read := []any{}
	for _, value := range values {
		if value != nil {
			read = append(read, value)
		}
	}
	return read
}

func readStruct(body []byte) reading {
	var into request
	if err := json.Unmarshal(body, &into); err != nil {
		return reading{"error": err.Error()}
	}
	return reading{"model": raw(into.Model), "stream": raw(into.Stream), "user": raw(into.User)}
}

func readMap(body []byte) reading {
	var into map[string]json.RawMessage
	if err := json.Unmarshal(body, &into); err != nil {
		return reading{"error": err.Error()}
	}
	read := reading{}
	for _, name := range []string{"model", "stream", "user"} {
		if value, ok := into[name]; ok {
			read[name] = raw(value)
		} else {
			read[name] = []any{}
		}
	}
	return read
}

func readForm(body []byte, contentType string) reading {
	r, err := http.NewRequest("POST", "/", bytes.NewReader(body))
	if err != nil {
		return reading{"error": err.Error()}
	}
	r.Header.Set("Content-Type", contentType)
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		return reading{"error": err.Error()}
	}
	read := reading{}
	for _, name := range []string{"model", "stream", "user"} {
		values := r.MultipartForm.Value[name]
		if values == nil {
			values = []string{}
		}
		read[name] = values
	}
	files := []string{}
	for name := range r.MultipartForm.File {
		files = append(files, name)
	}
	sort.Strings(files)
	read["files"] = files
	return read
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var ex example
		if err := json.Unmarshal(in.Bytes(), &ex); err != nil {
			panic(err)
		}
		var answer map[string]reading
		if ex.Kind == "json" {
			answer = map[string]reading{
				"go encoding/json struct": readStruct(ex.Body),
				"go encoding/json map":    readMap(ex.Body),
			}
		} else {
			answer = map[string]reading{"go mime/multipart": readForm(ex.Body, ex.ContentType)}
		}
		if err := out.Encode(answer); err != nil {
			panic(err)
		}
	}
}
