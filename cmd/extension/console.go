package main

import (
	"context"
	"strconv"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// consoleAnswer is getconsole's answer, as ExternalPathPayloadProvisioner reads it (4.22): host and port (a
// string) or a url, with the password CloudStack's console proxy presents. CloudStack masks only the key
// "password" in its logs; the extension never logs it.
type consoleAnswer struct {
	Status  string        `json:"status"`
	Console consoleAccess `json:"console"`
}

type consoleAccess struct {
	Host                   string `json:"host,omitempty"`
	Port                   string `json:"port,omitempty"`
	Password               string `json:"password,omitempty"`
	PasswordOneTimeUseOnly bool   `json:"passwordonetimeuseonly,omitempty"`
	URL                    string `json:"url,omitempty"`
	Protocol               string `json:"protocol"`
}

// getconsole mints a one-time console token for the Instance's running VM and tells CloudStack where the
// console gateway is: a VNC host, port and password for its console proxy, or (direct mode) a URL for the user.
func getconsole(ctx context.Context, c *call) (any, error) {
	settings, err := c.payload.Details().Console()
	if err != nil {
		return nil, err
	}
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	console, err := c.kube.Consoles().OpenConsole(ctx, id, settings)
	if err != nil {
		return nil, err
	}
	c.log.Info("console token minted", "mode", settings.Mode, "vm", c.ref(id.Name), "tokenNamespace", settings.Namespace, "expires", console.Expires)
	if settings.Mode == translate.ConsoleDirect {
		return consoleAnswer{Status: "success", Console: consoleAccess{URL: settings.URL + "/?token=" + console.Token, Protocol: translate.ConsoleDirect}}, nil
	}
	return consoleAnswer{Status: "success", Console: consoleAccess{
		Host: settings.Host, Port: strconv.Itoa(settings.Port), Password: console.Password,
		PasswordOneTimeUseOnly: true, Protocol: translate.ConsoleVNC,
	}}, nil
}
