package console

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// TestDirectConsoleInABrowser opens direct mode's URL in headless Chromium with noVNC, as a user's browser would,
// and reads the page's status over the DevTools protocol: it must read Connected, which noVNC sets only once the
// RFB handshake through the gateway has reached QEMU's ServerInit; the same link again must be refused.
// hack/test.sh provides Chromium (Debian) and noVNC (NOVNC_DIR: the npm package @novnc/novnc unpacked); without
// them the test skips.
func TestDirectConsoleInABrowser(t *testing.T) {
	novnc := os.Getenv("NOVNC_DIR")
	chromium, err := exec.LookPath("chromium")
	if novnc == "" || err != nil {
		t.Skip("needs chromium and NOVNC_DIR (the npm package @novnc/novnc unpacked)")
	}
	f := newFixture(t, func(c *Config) { c.NoVNCDir = novnc })
	id := f.vm(t, "vm-browser", true)
	c := f.console(t, id, translate.ConsoleDirect, 30*time.Second)
	link := f.httpURL + "/?token=" + c.Token

	page := openPage(t, chromium, link)
	assert.Equal(t, "Connected", page.waitStatus(t, "Connected"), "noVNC's status after the handshake")
	assert.Contains(t, f.logs.String(), `"msg":"console session started","session":1,"mode":"direct"`)
	assert.Equal(t, []string{"vm-browser"}, f.dialedVMs())
	if path := os.Getenv("CONSOLE_BROWSER_SCREENSHOT"); path != "" {
		require.NoError(t, os.WriteFile(path, page.screenshot(t), 0o644)) // for the README
	}

	again := openPage(t, chromium, link)
	assert.Contains(t, again.waitStatus(t, "Refused"), "Refused: ", "a used link opens nothing")
}

// page is one Chromium tab, driven over the DevTools protocol.
type page struct {
	ws     *websocket.Conn
	nextID int
}

// openPage starts headless Chromium on url (with the flags this machine's closed network needs) and connects to
// its tab. Chromium stops with the test.
func openPage(t *testing.T, chromium, url string) *page {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write the profile when the test ends.
	profile, err := os.MkdirTemp("", "chromium-profile-")
	require.NoError(t, err)
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--user-data-dir="+profile, "--window-size=760,460", "--remote-debugging-port=0", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so that its helper processes stop with it
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = os.RemoveAll(profile)
	})

	var port string
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		port, _, _ = strings.Cut(string(data), "\n")
		return err == nil && port != ""
	}, 30*time.Second, 50*time.Millisecond, "Chromium's DevTools port")
	var target string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		require.NoError(c, err)
		defer resp.Body.Close()
		var tabs []struct{ Type, URL, WebSocketDebuggerURL string }
		require.NoError(c, json.NewDecoder(resp.Body).Decode(&tabs))
		for _, tab := range tabs {
			if tab.Type == "page" {
				target = tab.WebSocketDebuggerURL
			}
		}
		require.NotEmpty(c, target)
	}, 30*time.Second, 50*time.Millisecond, "Chromium's tab")
	ws, resp, err := websocket.DefaultDialer.Dial(target, nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &page{ws: ws}
}

// call sends one DevTools command and returns its result.
func (p *page) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	p.nextID++
	id := p.nextID
	require.NoError(t, p.ws.SetWriteDeadline(time.Now().Add(30*time.Second)))
	require.NoError(t, p.ws.SetReadDeadline(time.Now().Add(30*time.Second)))
	require.NoError(t, p.ws.WriteJSON(map[string]any{"id": id, "method": method, "params": params}))
	for {
		var msg struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		require.NoError(t, p.ws.ReadJSON(&msg))
		if msg.ID != id {
			continue // an event
		}
		require.Nil(t, msg.Error, "DevTools %s", method)
		return msg.Result
	}
}

// waitStatus polls the page's status line until it starts with prefix, and returns it (the last seen, if never).
func (p *page) waitStatus(t *testing.T, prefix string) string {
	t.Helper()
	var status string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var res struct{ Result struct{ Value string } }
		raw := p.call(t, "Runtime.evaluate", map[string]any{
			"expression": "document.getElementById('status') ? document.getElementById('status').textContent : ''", "returnByValue": true,
		})
		require.NoError(t, json.Unmarshal(raw, &res))
		if status = res.Result.Value; strings.HasPrefix(status, prefix) {
			return status
		}
		time.Sleep(50 * time.Millisecond)
	}
	return status
}

func (p *page) screenshot(t *testing.T) []byte {
	t.Helper()
	var res struct{ Data []byte }
	require.NoError(t, json.Unmarshal(p.call(t, "Page.captureScreenshot", map[string]any{"format": "png"}), &res))
	_, err := png.Decode(bytes.NewReader(res.Data))
	require.NoError(t, err)
	return res.Data
}
