package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// metadataList is a page as the API server sends it: managedFields, owner references and finalizers included,
// which the stream skips.
func metadataList() *metav1.PartialObjectMetadataList {
	deleted := metav1.NewTime(time.Unix(1764547200, 0))
	list := &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next-page"}}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "meta.k8s.io", Version: "v1", Kind: "PartialObjectMetadataList"})
	for i, name := range []string{"i-2-1-vm", "i-2-2-vm", "i-2-3-vm"} {
		m := metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "tenant", UID: "uid", ResourceVersion: "7", Generation: int64(i + 1),
			CreationTimestamp: metav1.NewTime(time.Unix(1764540000, 0)),
			Finalizers:        []string{"kubevirt.io/virtualMachineControllerFinalize"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "v1", Kind: "X", Name: "owner", UID: "u"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubevirt-extension", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:x":"` + strings.Repeat("x", 1000) + `"}}`)}},
		}}
		if i != 1 {
			m.Labels = map[string]string{"cloudstack.apache.org/power-state": "poweron", "app.kubernetes.io/managed-by": "cloudstack-kubevirt"}
			m.Annotations = map[string]string{"cloudstack.apache.org/power-state-generation": "1"}
		}
		if i == 2 {
			m.DeletionTimestamp = &deleted
		}
		list.Items = append(list.Items, m)
	}
	return list
}

// kept is what the stream keeps of an item.
func kept(m metav1.PartialObjectMetadata) metav1.PartialObjectMetadata {
	return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Generation: m.Generation,
		DeletionTimestamp: m.DeletionTimestamp, Labels: m.Labels, Annotations: m.Annotations}}
}

func TestStreamMetadataProtobuf(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	var body bytes.Buffer
	want := metadataList()
	// The API server's own serializer (k8s.io/apimachinery/pkg/runtime/serializer/protobuf).
	require.NoError(t, protobuf.NewSerializer(scheme, scheme).Encode(want, &body))

	r := bufio.NewReader(&body)
	magic, err := r.Peek(4)
	require.NoError(t, err)
	require.Equal(t, protobufMagic, magic)
	_, _ = r.Discard(4)
	var got []metav1.PartialObjectMetadata
	cont, err := decodeMetadataProtobuf(r, func(m *metav1.PartialObjectMetadata) { got = append(got, *m) })
	require.NoError(t, err)
	assert.Equal(t, "next-page", cont)
	require.Len(t, got, len(want.Items))
	for i := range got {
		assert.Equal(t, kept(want.Items[i]), got[i])
	}
}

func TestStreamMetadataJSON(t *testing.T) {
	want := metadataList()
	data, err := json.Marshal(want)
	require.NoError(t, err)
	var got []metav1.PartialObjectMetadata
	cont, err := decodeMetadataJSON(bytes.NewReader(data), func(m *metav1.PartialObjectMetadata) { got = append(got, kept(*m)) })
	require.NoError(t, err)
	assert.Equal(t, "next-page", cont)
	require.Len(t, got, 3)
	assert.Equal(t, kept(want.Items[0]), got[0])
}

func TestStreamMetadataMalformed(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	var body bytes.Buffer
	require.NoError(t, protobuf.NewSerializer(scheme, scheme).Encode(metadataList(), &body))
	whole := body.Bytes()[4:]
	// runtime.Unknown ends with its empty contentEncoding and contentType (fields 3 and 4): a body cut there has
	// its whole list.
	trailer := []byte{3<<3 | wireBytes, 0, 4<<3 | wireBytes, 0}
	require.True(t, bytes.HasSuffix(whole, trailer))
	// Every cut within the list, item boundaries included: a page cut short must never pass for a shorter page.
	for cut := range len(whole) - len(trailer) {
		_, err := decodeMetadataProtobuf(bufio.NewReader(bytes.NewReader(whole[:cut])), func(*metav1.PartialObjectMetadata) {})
		assert.Error(t, err, "a body cut at %d of %d bytes was accepted", cut, len(whole))
	}
}

func FuzzStreamMetadata(f *testing.F) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	var body bytes.Buffer
	require.NoError(f, protobuf.NewSerializer(scheme, scheme).Encode(metadataList(), &body))
	f.Add(body.Bytes()[4:])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeMetadataProtobuf(bufio.NewReader(bytes.NewReader(data)), func(*metav1.PartialObjectMetadata) {})
	})
}
