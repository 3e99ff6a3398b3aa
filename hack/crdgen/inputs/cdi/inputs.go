// Package cdi pins the Go package crdgen generates the CDI CRDs from. crdgen loads it from here
// as source.
package cdi

import _ "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
