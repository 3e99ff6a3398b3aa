package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The CloudStack sources this file reproduces (apache/cloudstack):
//   - server/src/main/java/com/cloud/api/dispatch/ParamUnpackWorker.java (@7b1f69bc, unchanged in substance
//     since 4.x): `name[i].field=value` becomes a map name -> i -> field -> value; the name is lower-cased,
//     the field is everything after the first '.', case kept.
//   - server/src/main/java/com/cloud/api/dispatch/ParamProcessWorker.java (@00a47984): a command's fields are
//     filled from the unpacked parameters by type; a missing required one refuses the call; parameters the
//     command does not declare are ignored.
//   - api/src/main/java/org/apache/cloudstack/api/BaseCmd.java convertDetailsToMap (identical at @0147c269,
//     @ea7d3226 and weizhouapache/cloudstack@24de36a1, a fork of main): every entry of every group becomes one
//     detail. So details[0].key=kubeconfig details[0].value=/etc/k stores two details, "key" and "value".

// request is one API call's parameters as ParamUnpackWorker leaves them.
type request struct {
	scalars map[string]string
	maps    map[string]map[int]map[string]string
}

// apiError is an error answer: CloudStack's ApiErrorCode and text.
type apiError struct {
	code int
	text string
}

func (e *apiError) Error() string { return e.text }

// ApiErrorCode values (api/src/main/java/org/apache/cloudstack/api/ApiErrorCode.java).
const (
	errMalformed = 430 // MALFORMED_PARAMETER_ERROR
	errParam     = 431 // PARAM_ERROR
	errInternal  = 530 // INTERNAL_ERROR
)

func paramError(format string, args ...any) error {
	return &apiError{code: errParam, text: fmt.Sprintf(format, args...)}
}

func internalError(format string, args ...any) error {
	return &apiError{code: errInternal, text: fmt.Sprintf(format, args...)}
}

// unpack reads cmk's key=value arguments as ParamUnpackWorker.handle reads a request's parameters.
func unpack(args []string) (request, error) {
	req := request{scalars: map[string]string{}, maps: map[string]map[int]map[string]string{}}
	for _, kv := range args {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return req, &apiError{code: errMalformed, text: fmt.Sprintf("argument %q is not key=value", kv)}
		}
		if strings.Count(key, "[") <= 1 && strings.Index(key, "[") <= 0 {
			req.scalars[strings.ToLower(key)] = value // no '[' after the first character: a plain parameter
			continue
		}
		name, index, field, err := unpackKey(key)
		if err != nil {
			return req, err
		}
		if req.maps[name] == nil {
			req.maps[name] = map[int]map[string]string{}
		}
		if req.maps[name][index] == nil {
			req.maps[name][index] = map[string]string{}
		}
		req.maps[name][index][field] = value
	}
	return req, nil
}

// unpackKey splits name[index].field, refusing what ParamUnpackWorker refuses.
func unpackKey(key string) (name string, index int, field string, err error) {
	malformed := &apiError{code: errMalformed, text: "Unable to decode parameter " + key +
		"; if specifying an object array, please use parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup"}
	start, end := strings.Index(key, "["), strings.Index(key, "]")
	if start != strings.LastIndex(key, "[") || end < start || end != strings.LastIndex(key, "]") {
		return "", 0, "", malformed
	}
	dot := strings.Index(key, ".")
	if dot < end {
		return "", 0, "", malformed
	}
	index, convErr := strconv.Atoi(key[start+1 : end])
	if convErr != nil {
		return "", 0, "", malformed
	}
	return strings.ToLower(key[:start]), index, key[dot+1:], nil
}

// paramType is BaseCmd.CommandType, as far as these commands use it.
type paramType int

const (
	typeString paramType = iota
	typeUUID             // an id; the stand-in's ids are not UUIDs, and only ids of what it stores are looked up
	typeBoolean
	typeInteger
	typeList
	typeMap
)

// param is one @Parameter of a command.
type param struct {
	name     string
	typ      paramType
	required bool
}

// values are a command's fields once ParamProcessWorker has set them.
type values struct {
	strings  map[string]string
	booleans map[string]bool
	integers map[string]int
	lists    map[string][]string
	maps     map[string]map[int]map[string]string
	// ignored are the parameters the command does not declare: CloudStack drops them silently.
	ignored []string
}

// process fills a command's fields from the request as ParamProcessWorker.processParameters does.
func process(command string, req request, params []param) (values, error) {
	v := values{strings: map[string]string{}, booleans: map[string]bool{}, integers: map[string]int{},
		lists: map[string][]string{}, maps: map[string]map[int]map[string]string{}}
	declared := map[string]bool{}
	for _, p := range params {
		declared[p.name] = true
		if err := v.set(command, req, p); err != nil {
			return v, err
		}
	}
	for name := range req.scalars {
		if !declared[name] {
			v.ignored = append(v.ignored, name)
		}
	}
	for name := range req.maps {
		if !declared[name] {
			v.ignored = append(v.ignored, name)
		}
	}
	sort.Strings(v.ignored)
	return v, nil
}

func (v *values) set(command string, req request, p param) error {
	scalar, isScalar := req.scalars[p.name]
	group, isMap := req.maps[p.name]
	switch {
	case p.typ == typeMap && isMap:
		v.maps[p.name] = group
		return nil
	case p.typ != typeMap && isScalar:
		return v.setScalar(command, p, scalar)
	case p.required:
		return paramError("Unable to execute API command %s due to missing parameter %s", command, p.name)
	}
	return nil
}

// setScalar converts as setFieldValue does: Boolean.valueOf (anything but "true" is false), Integer.valueOf
// (blank is unset), a list split on commas by StringTokenizer (empty tokens dropped, none trimmed).
func (v *values) setScalar(command string, p param, s string) error {
	switch p.typ {
	case typeBoolean:
		v.booleans[p.name] = strings.EqualFold(s, "true")
	case typeInteger:
		if strings.TrimSpace(s) == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return paramError("Unable to execute API command %s due to invalid value %s for parameter %s", command, s, p.name)
		}
		v.integers[p.name] = int(n)
	case typeList:
		for _, tok := range strings.Split(s, ",") {
			if tok != "" {
				v.lists[p.name] = append(v.lists[p.name], tok)
			}
		}
	default:
		v.strings[p.name] = s
	}
	return nil
}

// has says whether the call set the parameter.
func (v values) has(name string) bool {
	_, s := v.strings[name]
	_, b := v.booleans[name]
	_, i := v.integers[name]
	_, l := v.lists[name]
	_, m := v.maps[name]
	return s || b || i || l || m
}

// convertDetailsToMap is BaseCmd.convertDetailsToMap: every entry of every group, later groups winning.
func convertDetailsToMap(groups map[int]map[string]string) map[string]string {
	out := map[string]string{}
	for _, i := range sortedIndexes(groups) {
		for k, val := range groups[i] {
			out[k] = val
		}
	}
	return out
}

// externalDetailPrefix is VmDetailConstants.EXTERNAL_DETAIL_PREFIX.
const externalDetailPrefix = "External:"

// convertExternalDetailsToMap is what RegisterTemplateCmd, UpdateHostCmd and UpdateServiceOfferingCmd return from
// getExternalDetails (4.21+). BaseCmd's own definition is not among the stored sources; the earlier inline form
// of the same getter (RunCustomActionCmd, RegisterExtensionCmd during PR #9752) is convertDetailsToMap with each
// key prefixed External:, and ExtensionsManagerImpl.getFilteredExternalDetails strips that prefix for the payload.
func convertExternalDetailsToMap(groups map[int]map[string]string) map[string]string {
	out := map[string]string{}
	for k, val := range convertDetailsToMap(groups) {
		out[externalDetailPrefix+k] = val
	}
	return out
}

// sortedIndexes orders the groups; Java's HashMap<Integer, Map> iterates small integer keys in this order too.
func sortedIndexes(groups map[int]map[string]string) []int {
	idx := make([]int, 0, len(groups))
	for i := range groups {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}
