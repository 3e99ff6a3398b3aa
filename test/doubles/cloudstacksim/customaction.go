package cloudstacksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// CustomAction is what CloudStack stores of a custom action (addCustomAction) that shapes what a user sees when
// it runs.
type CustomAction struct {
	ID, Name                     string
	SuccessMessage, ErrorMessage string
	ExtensionName                string
	// ResourceName is the name of the resource it runs on ({{resourceName}}).
	ResourceName string
}

// CustomActionResult is CloudStack's CustomActionResultResponse (the async job's result of runCustomAction), as
// serialised by @SerializedName (api/src/main/java/org/apache/cloudstack/extension/CustomActionResultResponse.java).
type CustomActionResult struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Success bool              `json:"success"`
	Result  map[string]string `json:"result"`
}

// Result turns one run of the executable into the API's answer, as ExtensionsManagerImpl.runCustomAction does
// (framework/extensions/.../manager/ExtensionsManagerImpl.java, apache/cloudstack @928972f7, the 4.22 line):
// success is the answer's result (ExternalPathPayloadProvisioner.runCustomAction passes executeExternalCommand's
// exit-code verdict, @de357a6f), message is the action's success or error message, and details the answer's
// details: the output, or "Exit code: N, Output: ..." or "Timeout" on failure.
func (a CustomAction) Result(r Result) CustomActionResult {
	ok := r.Succeeded()
	return CustomActionResult{ID: a.ID, Name: a.Name, Success: ok, Result: map[string]string{
		"message": a.Message(ok),
		"details": r.Details(),
	}}
}

// Message is ExtensionsManagerImpl.getActionMessage (@928972f7): the success or error message with
// {{actionName}}, {{extensionName}} and {{resourceName}} replaced, or a default when it is blank.
func (a CustomAction) Message(success bool) string {
	msg := a.ErrorMessage
	if success {
		msg = a.SuccessMessage
	}
	if strings.TrimSpace(msg) == "" {
		if success {
			return "Successfully completed " + a.Name
		}
		return "Failed to complete " + a.Name
	}
	resource := a.ResourceName
	if resource == "" {
		resource = "VirtualMachine" // resourceType.name() when the resource has no name
	}
	return strings.NewReplacer("{{actionName}}", a.Name, "{{extensionName}}", a.ExtensionName,
		"{{resourceName}}", resource).Replace(msg)
}

// Dialog is what CloudStack's UI shows once a custom action's job has finished.
type Dialog struct {
	// Kind is "success" (this.$success) or "error" (this.$error): the modal's icon and colour.
	Kind string
	// Message is the paragraph at the top: the action's success or error message.
	Message string
	// Headers and Rows are the table, when there is one; nil otherwise.
	Headers []string
	Rows    [][]string
}

// HasTable says whether the dialog draws a table.
func (d Dialog) HasTable() bool { return d.Headers != nil }

// Render is RunCustomAction.vue's successMethod (ui/src/views/extension/RunCustomAction.vue, apache/cloudstack
// @bd84a5c1): JSON.parse(result.details) inside a try whose failure is ignored; a table only when the parsed
// printmessage is "true" (String(...).toLowerCase()) and message is a non-empty array (a single object is
// wrapped), with the first row's keys as headers and each row's values through String(). A non-array message
// is never shown: its branch compares the boolean printExtensionMessage with the string 'true'.
func Render(r CustomActionResult) Dialog {
	d := Dialog{Kind: "error", Message: r.Result["message"]}
	if r.Success {
		d.Kind = "success"
	}
	if d.Message == "" {
		d.Message = map[bool]string{true: "Success", false: "Failed"}[r.Success]
	}
	rows, print := parseExtensionMessage(r.Result["details"])
	if !print || len(rows) == 0 {
		return d
	}
	d.Headers = rows[0].keys
	for _, row := range rows {
		d.Rows = append(d.Rows, row.values)
	}
	return d
}

// jsObject is a parsed JSON object in JavaScript's Object.keys order, values as String(value) renders them.
type jsObject struct{ keys, values []string }

// parseExtensionMessage reads details as the UI does; any parse failure means no table.
func parseExtensionMessage(details string) ([]jsObject, bool) {
	var parsed struct {
		PrintMessage json.RawMessage `json:"printmessage"`
		Message      json.RawMessage `json:"message"`
	}
	if json.Unmarshal([]byte(details), &parsed) != nil {
		return nil, false
	}
	print := strings.ToLower(jsString(parsed.PrintMessage)) == "true"
	msg := bytes.TrimSpace(parsed.Message)
	switch {
	case len(msg) == 0:
		return nil, print
	case msg[0] == '{':
		obj, err := parseJSObject(msg)
		if err != nil || len(obj.keys) == 0 {
			return nil, print
		}
		return []jsObject{obj}, print
	case msg[0] == '[':
		return parseJSArray(msg), print
	}
	return nil, print
}

func parseJSArray(data []byte) []jsObject {
	var items []json.RawMessage
	if json.Unmarshal(data, &items) != nil {
		return nil
	}
	rows := make([]jsObject, 0, len(items))
	for _, item := range items {
		obj, err := parseJSObject(item)
		if err != nil {
			obj = jsObject{} // Object.keys/values of a non-object: no cells
		}
		rows = append(rows, obj)
	}
	return rows
}

// parseJSObject decodes an object keeping JavaScript's property order: integer-like keys ascending, then the
// others in insertion order.
func parseJSObject(data []byte) (jsObject, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return jsObject{}, fmt.Errorf("not a JSON object")
	}
	var ints, others []string
	values := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsObject{}, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsObject{}, err
		}
		if _, seen := values[key]; !seen {
			if isArrayIndex(key) {
				ints = append(ints, key)
			} else {
				others = append(others, key)
			}
		}
		values[key] = jsString(raw)
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return jsObject{}, err
	}
	sort.Slice(ints, func(i, j int) bool { a, _ := strconv.Atoi(ints[i]); b, _ := strconv.Atoi(ints[j]); return a < b })
	obj := jsObject{keys: append(ints, others...)}
	for _, k := range obj.keys {
		obj.values = append(obj.values, values[k])
	}
	return obj, nil
}

func isArrayIndex(key string) bool {
	n, err := strconv.ParseUint(key, 10, 32)
	return err == nil && strconv.FormatUint(n, 10) == key
}

// jsString is String(value) for a JSON value: strings as they are, objects "[object Object]", arrays their
// elements joined with commas, null "null", numbers and booleans as written.
func jsString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "undefined"
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '{':
		return "[object Object]"
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		parts := make([]string, len(items))
		for i, item := range items {
			if s := jsString(item); s != "null" && s != "undefined" {
				parts[i] = s
			}
		}
		return strings.Join(parts, ",")
	case 't', 'f', 'n':
		return string(raw)
	}
	return jsNumber(raw)
}

// jsNumber is Number.prototype.toString of a JSON number: no trailing zeros, exponent form from 1e21 and
// below 1e-6.
func jsNumber(raw json.RawMessage) string {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return string(raw)
	}
	if abs := math.Abs(f); abs >= 1e21 || (abs < 1e-6 && abs != 0) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
