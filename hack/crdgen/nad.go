package main

import (
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// networkAttachmentDefinition is Multus' CRD, written out by hand: it has no Go types to generate
// from. Like the upstream artifacts/networks-crd.yaml, its schema knows only spec.config, the CNI
// configuration as a JSON string; anything else in spec is pruned by the API server.
func networkAttachmentDefinition() *apiextv1.CustomResourceDefinition {
	return &apiextv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiextv1.SchemeGroupVersion.String(), Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "network-attachment-definitions.k8s.cni.cncf.io"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "k8s.cni.cncf.io",
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural:     "network-attachment-definitions",
				Singular:   "network-attachment-definition",
				Kind:       "NetworkAttachmentDefinition",
				ListKind:   "NetworkAttachmentDefinitionList",
				ShortNames: []string{"net-attach-def"},
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name:    "v1",
				Served:  true,
				Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {
							Type: "object",
							Properties: map[string]apiextv1.JSONSchemaProps{
								"config": {Type: "string"},
							},
						},
					},
				}},
			}},
		},
	}
}
