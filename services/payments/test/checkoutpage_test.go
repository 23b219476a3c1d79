package test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// checkoutPage is what a person (or a screen reader) finds on the test-mode checkout page.
type checkoutPage struct {
	lang, title string
	// amount is the text of the element with id "amount".
	amount string
	// formMethod and formAction are those of the form holding the buttons; legend names their group.
	formMethod, formAction, legend string
	buttons                        []pageButton
	// links maps each link's text to its href.
	links map[string]string
}

type pageButton struct {
	text, typ, name, value string
}

// openCheckoutPage GETs the page at pageURL and reads it with an HTML parser.
func openCheckoutPage(t *testing.T, pageURL string) checkoutPage {
	t.Helper()
	resp, err := noRedirectClient().Get(pageURL)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	doc, err := html.Parse(resp.Body)
	require.NoError(t, err)
	p := checkoutPage{links: map[string]string{}}
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "html":
				p.lang = attr(n, "lang")
			case "title":
				p.title = text(n)
			case "form":
				p.formMethod, p.formAction, inForm = attr(n, "method"), attr(n, "action"), true
			case "legend":
				p.legend = text(n)
			case "button":
				require.True(t, inForm, "button %q outside a form", text(n))
				p.buttons = append(p.buttons, pageButton{text: text(n), typ: attr(n, "type"), name: attr(n, "name"), value: attr(n, "value")})
			case "a":
				p.links[text(n)] = attr(n, "href")
			}
			if attr(n, "id") == "amount" {
				p.amount = text(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	return p
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// button returns the page's button labelled label.
func (p checkoutPage) button(t *testing.T, label string) pageButton {
	t.Helper()
	for _, b := range p.buttons {
		if b.text == label {
			return b
		}
	}
	require.Failf(t, "no such button", "%q not among %+v", label, p.buttons)
	return pageButton{}
}

// payWith presses the button labelled label on cs's checkout page the way a browser submits its
// form, and checks that it lands on the console's success URL.
func payWith(t *testing.T, cs *paymentsv1.CreateCheckoutSessionResponse, label string) {
	t.Helper()
	page := openCheckoutPage(t, cs.GetUrl())
	b := page.button(t, label)
	require.Equal(t, "submit", b.typ)
	require.Equal(t, "post", page.formMethod)
	base, err := url.Parse(cs.GetUrl())
	require.NoError(t, err)
	action, err := base.Parse(page.formAction)
	require.NoError(t, err)
	resp, err := noRedirectClient().PostForm(action.String(), url.Values{b.name: {b.value}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, successURL(cs.GetSessionId()), resp.Header.Get("Location"))
}

func TestCheckoutPageIsAccessible(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	for _, tc := range []struct {
		amount money.Nanos
		want   string
	}{
		{25 * unit, "$25.00"},
		{12*unit + 340_000_000, "$12.34"},
		{9_999*unit + 990_000_000, "$9,999.99"},
		{5*unit + 50_000_000, "$5.05"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			cs := e.checkout(t, "acme", tc.amount)
			page := openCheckoutPage(t, cs.GetUrl())
			require.Equal(t, "en", page.lang)
			require.Contains(t, page.title, "TEST MODE")
			require.Equal(t, tc.want, page.amount, "the amount, exactly, from integer nanos, written as the console writes it (money.Format)")
			require.Equal(t, "Pay "+tc.want+" with", page.legend, "the buttons are a labelled group")
			require.Equal(t, []pageButton{
				{text: "Credit Card", typ: "submit", name: "method", value: "card"},
				{text: "Google Pay", typ: "submit", name: "method", value: "google_pay"},
			}, page.buttons)
			require.Equal(t, "/checkout/test/"+cs.GetSessionId()+"/pay", page.formAction)
			require.Equal(t, cancelURL, page.links["Cancel"])
		})
	}
}

// TestCheckoutPagePaysWithEitherChoice pays one session with each of the page's choices: both
// credit the organization, record what Stripe would (Google Pay is a card wallet) and return to
// the console's Billing page with the session id.
func TestCheckoutPagePaysWithEitherChoice(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	for _, tc := range []struct {
		label, org, wallet string
	}{
		{label: "Credit Card", org: "acme"},
		{label: "Google Pay", org: "globex", wallet: "google_pay"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			cs := e.checkout(t, tc.org, 30*unit)
			payWith(t, cs, tc.label)
			require.Equal(t, 30*unit, nanos(t, e.balance(t, tc.org).GetBalance()))
			p := e.payment(t, tc.org, cs.GetPaymentId())
			require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
			require.Equal(t, "card", p.GetPaymentMethod())
			require.Equal(t, tc.wallet, p.GetPaymentWallet())

			// Paid, the page offers no button any more, only the way back.
			page := openCheckoutPage(t, cs.GetUrl())
			require.Empty(t, page.buttons)
			require.Equal(t, cancelURL, page.links["Back to Billing"])
		})
	}
}

func TestCheckoutPageRefusesUnknownChoices(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	cs := e.checkout(t, "acme", 30*unit)
	for _, method := range []string{"", "paypal", "card "} {
		resp, err := noRedirectClient().PostForm(cs.GetUrl()+"/pay", url.Values{"method": {method}})
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, method)
	}
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
}
