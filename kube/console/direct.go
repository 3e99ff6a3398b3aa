package console

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
)

// Direct mode: getconsole hands the user <console_url>/?token=...; the page here runs noVNC, which opens
// websockify?token=... on the same origin. The token is consumed when the websocket opens, not when the page
// loads, and the gateway does the VNC side of the handshake: noVNC sees a server that asks for no password.

// DirectHandler serves the page, noVNC's files and the websocket.
func (g *Gateway) DirectHandler() http.Handler {
	mux := http.NewServeMux()
	noVNC := g.novncAvailable()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { servePage(w, noVNC) })
	mux.HandleFunc("GET /websockify", g.websockify)
	if noVNC {
		mux.Handle("GET /novnc/", http.StripPrefix("/novnc/", http.FileServer(http.Dir(g.cfg.NoVNCDir))))
	}
	return mux
}

func (g *Gateway) novncAvailable() bool {
	if g.cfg.NoVNCDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(g.cfg.NoVNCDir, "core", "rfb.js"))
	return err == nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Console</title>
<style>html,body{margin:0;height:100%;background:#222;color:#ddd;font-family:sans-serif}#status{padding:4px 8px;font-size:13px}#screen{position:absolute;top:26px;bottom:0;left:0;right:0}</style>
</head><body><div id="status">{{if .NoVNC}}Connecting…{{else}}This console gateway has no noVNC: start it with --novnc-dir pointing at the npm package @novnc/novnc (the image has it in /novnc).{{end}}</div><div id="screen"></div>
{{if .NoVNC}}<script type="module">
import RFB from './novnc/core/rfb.js';
const status = document.getElementById('status');
const token = new URLSearchParams(location.search).get('token') || '';
// The token works once; keep it out of the history and of anything the page loads.
history.replaceState(null, '', location.pathname);
const ws = new URL('websockify', location.href);
ws.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
ws.search = '?token=' + encodeURIComponent(token);
const rfb = new RFB(document.getElementById('screen'), ws.href);
rfb.scaleViewport = true;
rfb.addEventListener('connect', () => { status.textContent = 'Connected'; });
rfb.addEventListener('securityfailure', (e) => { status.textContent = 'Refused: ' + (e.detail.reason || 'the console link is invalid, expired or already used'); });
rfb.addEventListener('disconnect', (e) => { if (!status.textContent.startsWith('Refused')) status.textContent = e.detail.clean ? 'Disconnected' : 'Connection lost: open the console from CloudStack again'; });
</script>{{end}}
</body></html>
`))

// servePage serves the page, which runs noVNC if the gateway has it.
func servePage(w http.ResponseWriter, noVNC bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = pageTemplate.Execute(w, struct{ NoVNC bool }{noVNC})
}

var upgrader = websocket.Upgrader{
	// noVNC asks for "binary" in some versions, nothing in others; both are the same byte stream.
	Subprotocols:     []string{"binary"},
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   32 << 10,
	WriteBufferSize:  32 << 10,
	// The default origin check stays: only the gateway's own page may open a session from a browser.
}

// websockify is one direct-mode session: the token, then RFB with security None to the browser.
// It holds a slot of direct mode's own pool, and of its source's share, until the relay starts.
func (g *Gateway) websockify(w http.ResponseWriter, r *http.Request) {
	release, reason, err := g.direct.admit(clientSource(r, g.cfg.TrustedProxies))
	if err != nil {
		g.cfg.Metrics.refused("direct", reason)
		g.cfg.Log.Warn("connection refused", "mode", "direct", "client", clientAddr(r), "error", err.Error())
		code := http.StatusServiceUnavailable
		if reason == "source limit" {
			code = http.StatusTooManyRequests
		}
		http.Error(w, "the console gateway is busy: try again later", code)
		return
	}
	defer release() // once: also given back when the relay starts
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.cfg.Metrics.refused("direct", "websocket")
		return // Upgrade has answered
	}
	conn := newWSConn(ws)
	s := g.newSession("direct", clientAddr(r))
	// The request's context ends when the handler returns, which it does only after the session.
	ctx := r.Context()
	hctx, cancel := context.WithTimeout(ctx, g.cfg.HandshakeTimeout)
	defer cancel()
	deadline, _ := hctx.Deadline()
	_ = conn.SetDeadline(g.authDeadline(s.start, deadline))
	minor, err := serverVersion(conn)
	if err != nil {
		g.fail(s, "handshake", err)
		conn.Close()
		return
	}
	_ = conn.SetDeadline(deadline)
	if !g.acquire(g.sessions) {
		g.fail(s, "too many sessions", fmt.Errorf("%d sessions already run", g.cfg.MaxSessions))
		_ = refuseSecurity(conn, minor, "the console gateway is busy: try again later")
		conn.Close()
		return
	}
	defer func() { <-g.sessions }()
	token := r.URL.Query().Get("token")
	up, reason := g.open(hctx, s, func(ctx context.Context) (consoletoken.Target, error) {
		return g.cfg.Tokens.ConsumeDirect(ctx, token)
	})
	if up == nil {
		if reason == "authentication failed" {
			reason = "the console link is invalid, expired or already used: open the console from CloudStack again"
		}
		_ = refuseSecurity(conn, minor, reason)
		conn.Close()
		return
	}
	if err := g.acceptNone(conn, minor); err != nil {
		g.fail(s, "handshake", err)
		up.Close()
		conn.Close()
		return
	}
	release()
	_ = conn.SetDeadline(time.Time{})
	g.relay(ctx, s, conn, up)
}

// acceptNone offers security None and, in RFB 3.8, confirms it.
func (g *Gateway) acceptNone(conn *wsConn, minor int) error {
	if err := offerSecurity(conn, minor, securityNone); err != nil {
		return err
	}
	if minor >= 8 {
		return securityResult(conn, minor, true, "")
	}
	return nil
}

// clientAddr is the peer's address and what a proxy's header says, for the log: unlike clientSource, it trusts
// nothing and hides nothing.
func clientAddr(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		return r.RemoteAddr + " (for " + fwd + ")"
	}
	return r.RemoteAddr
}
