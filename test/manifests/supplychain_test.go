package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// releaseTag is how hack/dist.sh names a release (`git describe --tags`: v0.2.0). A tag like latest or dev moves,
// so the cluster would run whatever was pushed last under it, not what the manifests were tested with.
var releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

// TestImagesArePinned renders every kustomization and checks each container image: ours carry a release tag (the
// same for all, so a release bumps them together), anything else a digest.
func TestImagesArePinned(t *testing.T) {
	tags := map[string]bool{}
	for _, dir := range kustomizations(t) {
		for _, o := range render(t, dir) {
			for _, image := range images(o) {
				name, tag, digest := splitImage(image)
				where := dir + ": " + o.GetKind() + " " + o.GetName() + ": " + image
				if digest != "" {
					continue
				}
				require.NotEmpty(t, tag, "%s has no tag: it means latest", where)
				require.True(t, strings.HasPrefix(name, "ghcr.io/cloudstack-kubevirt/"), "%s: another project's image is pinned by digest", where)
				assert.Regexp(t, releaseTag, tag, "%s: not a release tag", where)
				tags[tag] = true
			}
		}
	}
	assert.Len(t, tags, 1, "one release tag for every image of the project: %v", tags)
}

// TestDockerfilePinsDigests: every base image of the Dockerfile is pinned by digest, and noVNC is fetched by the
// script that checks it against the hash kept in hack/novnc.lock, as hack/test.sh fetches it.
func TestDockerfilePinsDigests(t *testing.T) {
	dockerfile := readRepoFile(t, "Dockerfile")
	from := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`)
	matches := from.FindAllStringSubmatch(dockerfile, -1)
	require.NotEmpty(t, matches)
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	for _, m := range matches {
		assert.Regexp(t, digest, m[1], "FROM %s: pin it by digest", m[1])
	}

	lock := regexp.MustCompile(`(?m)^@novnc/novnc \d+\.\d+\.\d+ sha512-[A-Za-z0-9+/]{86}==$`)
	assert.Regexp(t, lock, readRepoFile(t, "hack/novnc.lock"))
	assert.Contains(t, dockerfile, "RUN hack/fetch-novnc.sh /novnc")
	npmPack := regexp.MustCompile(`npm pack\s`)
	assert.NotRegexp(t, npmPack, dockerfile, "noVNC is fetched only through hack/fetch-novnc.sh, which checks it")
	testScript := readRepoFile(t, "hack/test.sh")
	assert.Contains(t, testScript, `hack/fetch-novnc.sh "$tmp/x"`)
	assert.NotRegexp(t, npmPack, testScript, "noVNC is fetched only through hack/fetch-novnc.sh, which checks it")
}

// kustomizations lists every directory of manifests/ that holds a kustomization.
func kustomizations(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(repoRoot(), "manifests")
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		dirs = append(dirs, rel)
		return err
	})
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	return dirs
}

// images lists the container images of a workload's pod template, or of a Pod.
func images(o *unstructured.Unstructured) []string {
	spec := []string{"spec", "template", "spec"}
	if o.GetKind() == "Pod" {
		spec = []string{"spec"}
	}
	var out []string
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		containers, _, _ := unstructured.NestedSlice(o.Object, append(spec, field)...)
		for _, c := range containers {
			if image, ok := c.(map[string]any)["image"].(string); ok {
				out = append(out, image)
			}
		}
	}
	return out
}

// splitImage splits registry/name:tag@digest; a colon before the last slash belongs to the registry's port.
func splitImage(image string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ image, name, tag, digest string }{
		{"ghcr.io/cloudstack-kubevirt/reconciler:v0.1.0", "ghcr.io/cloudstack-kubevirt/reconciler", "v0.1.0", ""},
		{"ghcr.io/cloudstack-kubevirt/reconciler", "ghcr.io/cloudstack-kubevirt/reconciler", "", ""},
		{"registry:5000/reconciler", "registry:5000/reconciler", "", ""},
		{"registry:5000/reconciler:latest", "registry:5000/reconciler", "latest", ""},
		{"gcr.io/distroless/static:nonroot@sha256:abc", "gcr.io/distroless/static", "nonroot", "sha256:abc"},
	}
	for _, tt := range tests {
		name, tag, digest := splitImage(tt.image)
		assert.Equal(t, []string{tt.name, tt.tag, tt.digest}, []string{name, tag, digest}, tt.image)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), path))
	require.NoError(t, err)
	return string(data)
}
