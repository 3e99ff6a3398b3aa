package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StreamMetadata reads one page of the metadata of the namespace's objects of list's kind and hands fn each
// item as it arrives, keeping only the fields the power states need: name, generation, deletion, labels and
// annotations. At 10,000 VMs the page is 13 MB of protobuf, most of it managedFields; decoding it whole costs
// tens of MiB, decoding it item by item one item's worth. It returns the page's continue token.
func (c *Client) StreamMetadata(ctx context.Context, namespace string, list *metav1.PartialObjectMetadataList, opts ListOptions, fn func(*metav1.PartialObjectMetadata)) (string, error) {
	req, err := c.request("GET", list, namespace, "")
	if err != nil {
		return "", err
	}
	setListParams(req, opts)
	body, err := req.Stream(ctx)
	if err != nil {
		return "", err
	}
	defer body.Close()
	r := bufio.NewReaderSize(body, 64<<10)
	magic, err := r.Peek(len(protobufMagic))
	if err != nil || !bytes.Equal(magic, protobufMagic) {
		return decodeMetadataJSON(r, fn) // a server that offers no protobuf for it
	}
	_, _ = r.Discard(len(protobufMagic))
	return decodeMetadataProtobuf(r, fn)
}

// protobufMagic starts every protobuf body of the API server (k8s.io/apimachinery/pkg/runtime/serializer/
// protobuf/protobuf.go): a runtime.Unknown follows, whose field 2 holds the object.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

func decodeMetadataJSON(r io.Reader, fn func(*metav1.PartialObjectMetadata)) (string, error) {
	var list metav1.PartialObjectMetadataList
	if err := json.NewDecoder(r).Decode(&list); err != nil {
		return "", fmt.Errorf("decoding the metadata list: %w", err)
	}
	for i := range list.Items {
		fn(&list.Items[i])
	}
	return list.Continue, nil
}

// Field numbers of k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto and runtime/generated.proto.
const (
	unknownRaw        = 2 // runtime.Unknown.raw
	listMetadata      = 1 // PartialObjectMetadataList.metadata (ListMeta)
	listItems         = 2 // PartialObjectMetadataList.items
	listMetaContinue  = 3 // ListMeta.continue
	partialMetadata   = 1 // PartialObjectMetadata.metadata (ObjectMeta)
	metaName          = 1
	metaGeneration    = 7
	metaDeletion      = 9
	metaLabels        = 11
	metaAnnotations   = 12
	entryKey          = 1 // map entries
	entryValue        = 2
	timeSeconds       = 1 // Timestamp
	wireVarint        = 0
	wireFixed64       = 1
	wireBytes         = 2
	wireFixed32       = 5
	maxMetadataItemPB = 16 << 20 // far above an object's metadata (the API server caps an object at 1.5 MiB)
)

var errProtobuf = errors.New("malformed protobuf in the metadata list")

// decodeMetadataProtobuf reads a runtime.Unknown from r and streams the items of the list in its raw field.
func decodeMetadataProtobuf(r *bufio.Reader, fn func(*metav1.PartialObjectMetadata)) (string, error) {
	cont, sawList := "", false
	for {
		field, wire, err := readTag(r)
		if errors.Is(err, io.EOF) {
			if !sawList {
				return "", fmt.Errorf("%w: no list in the body", errProtobuf)
			}
			return cont, nil
		}
		if err != nil {
			return "", err
		}
		if field != unknownRaw || wire != wireBytes {
			if err := skipStream(r, wire); err != nil {
				return "", err
			}
			continue
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > math.MaxInt64 {
			return "", errProtobuf
		}
		if cont, err = decodeListStream(&io.LimitedReader{R: r, N: int64(n)}, fn); err != nil {
			return "", err
		}
		sawList = true
	}
}

// decodeListStream reads a PartialObjectMetadataList, one item at a time.
func decodeListStream(r *io.LimitedReader, fn func(*metav1.PartialObjectMetadata)) (string, error) {
	br := bufio.NewReader(r)
	var buf []byte
	cont := ""
	for {
		field, wire, err := readTag(br)
		if errors.Is(err, io.EOF) {
			if r.N != 0 {
				return "", fmt.Errorf("%w: the body ends %d bytes before its list does", errProtobuf, r.N)
			}
			return cont, nil
		}
		if err != nil {
			return "", err
		}
		if wire != wireBytes || (field != listMetadata && field != listItems) {
			if err := skipStream(br, wire); err != nil {
				return "", err
			}
			continue
		}
		n, err := binary.ReadUvarint(br)
		if err != nil || n > maxMetadataItemPB || n > uint64(r.N)+uint64(br.Buffered()) {
			return "", errProtobuf // more than the list holds: never allocate for it
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", fmt.Errorf("reading the metadata list: %w", err)
		}
		if field == listMetadata {
			if cont, err = listContinue(buf); err != nil {
				return "", err
			}
			continue
		}
		item, err := partialObjectMetadata(buf)
		if err != nil {
			return "", err
		}
		fn(item)
	}
}

func listContinue(b []byte) (string, error) {
	cont := ""
	err := eachField(b, func(field int, _ int, v []byte, _ uint64) error {
		if field == listMetaContinue {
			cont = string(v)
		}
		return nil
	})
	return cont, err
}

func partialObjectMetadata(b []byte) (*metav1.PartialObjectMetadata, error) {
	item := &metav1.PartialObjectMetadata{}
	err := eachField(b, func(field int, wire int, v []byte, _ uint64) error {
		if field != partialMetadata || wire != wireBytes {
			return nil
		}
		return objectMeta(v, &item.ObjectMeta)
	})
	return item, err
}

// objectMeta decodes the fields of an ObjectMeta that the power states read; the rest (managedFields above
// all) is skipped without being copied.
func objectMeta(b []byte, m *metav1.ObjectMeta) error {
	return eachField(b, func(field int, wire int, v []byte, x uint64) error {
		switch {
		case field == metaName && wire == wireBytes:
			m.Name = string(v)
		case field == metaGeneration && wire == wireVarint:
			m.Generation = int64(x)
		case field == metaDeletion && wire == wireBytes:
			var secs int64
			err := eachField(v, func(f int, w int, _ []byte, x uint64) error {
				if f == timeSeconds && w == wireVarint {
					secs = int64(x)
				}
				return nil
			})
			m.DeletionTimestamp = &metav1.Time{Time: time.Unix(secs, 0)}
			return err
		case (field == metaLabels || field == metaAnnotations) && wire == wireBytes:
			k, val, err := mapEntry(v)
			if err != nil {
				return err
			}
			target := &m.Labels
			if field == metaAnnotations {
				target = &m.Annotations
			}
			if *target == nil {
				*target = map[string]string{}
			}
			(*target)[k] = val
		}
		return nil
	})
}

func mapEntry(b []byte) (k, v string, err error) {
	err = eachField(b, func(field int, wire int, val []byte, _ uint64) error {
		switch {
		case field == entryKey && wire == wireBytes:
			k = string(val)
		case field == entryValue && wire == wireBytes:
			v = string(val)
		}
		return nil
	})
	return k, v, err
}

// eachField walks a message's fields: v is a length-delimited field's bytes, x a varint's value.
func eachField(b []byte, fn func(field, wire int, v []byte, x uint64) error) error {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errProtobuf
		}
		b = b[n:]
		field, wire := int(tag>>3), int(tag&7)
		var v []byte
		var x uint64
		switch wire {
		case wireVarint:
			if x, n = binary.Uvarint(b); n <= 0 {
				return errProtobuf
			}
			b = b[n:]
		case wireFixed64, wireFixed32:
			size := 8
			if wire == wireFixed32 {
				size = 4
			}
			if len(b) < size {
				return errProtobuf
			}
			b = b[size:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errProtobuf
			}
			v, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return errProtobuf
		}
		if err := fn(field, wire, v, x); err != nil {
			return err
		}
	}
	return nil
}

func readTag(r io.ByteReader) (field, wire int, err error) {
	tag, err := binary.ReadUvarint(r)
	if errors.Is(err, io.EOF) {
		return 0, 0, io.EOF
	}
	if err != nil {
		return 0, 0, errProtobuf
	}
	return int(tag >> 3), int(tag & 7), nil
}

// skipStream skips a field's value in a stream.
func skipStream(r *bufio.Reader, wire int) error {
	var err error
	switch wire {
	case wireVarint:
		_, err = binary.ReadUvarint(r)
	case wireFixed64:
		_, err = r.Discard(8)
	case wireFixed32:
		_, err = r.Discard(4)
	case wireBytes:
		var n uint64
		if n, err = binary.ReadUvarint(r); err == nil && n > math.MaxInt64 {
			err = errProtobuf
		} else if err == nil {
			_, err = io.CopyN(io.Discard, r, int64(n))
		}
	default:
		err = errProtobuf
	}
	if err != nil {
		return fmt.Errorf("%w (wire type %s)", errProtobuf, strconv.Itoa(wire))
	}
	return nil
}
