package console

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// TestDirectConsoleInABrowser opens direct mode's URL in headless Chromium with noVNC, as a user's browser would,
// and checks from the token Secret that the page's websocket consumed the token. It runs where Chromium and noVNC
// are at hand (NOVNC_DIR: the unpacked npm package @novnc/novnc); CI has neither, so there it skips.
func TestDirectConsoleInABrowser(t *testing.T) {
	novnc := os.Getenv("NOVNC_DIR")
	chromium, err := exec.LookPath("chromium")
	if novnc == "" || err != nil {
		t.Skip("needs chromium and NOVNC_DIR (the npm package @novnc/novnc unpacked)")
	}
	f := newFixture(t, func(c *Config) { c.NoVNCDir = novnc })
	id := f.vm(t, "vm-browser", true)
	c := f.console(t, id, translate.ConsoleDirect, 30*time.Second)

	shot := filepath.Join(t.TempDir(), "page.png")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=760,460", "--virtual-time-budget=600000", "--screenshot="+shot,
		f.httpURL+"/?token="+c.Token).CombinedOutput()
	require.NoError(t, err, "chromium: %s", out)
	assert.Contains(t, f.logs.String(), `"msg":"console session started","session":1,"mode":"direct"`)
	assert.Equal(t, []string{"vm-browser"}, f.dialedVMs())
	img, err := os.Open(shot)
	require.NoError(t, err)
	defer img.Close()
	decoded, err := png.Decode(img)
	require.NoError(t, err)
	assert.Greater(t, brightPixels(decoded), 500, "the VM's screen (or at least the page) is drawn")
	if path := os.Getenv("CONSOLE_BROWSER_SCREENSHOT"); path != "" {
		data, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, data, 0o644))
	}
}
