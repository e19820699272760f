"""The local Stripe server for `make dev` and `make test`: localstripe (PyPI, pinned in
requirements-dev.txt), started on 127.0.0.1 only, its state in memory only, with three gaps
between localstripe 1.15.10 and Stripe filled so that the service's real Stripe code paths run
against it unchanged:

1. Stripe.js's `confirmCardPayment(clientSecret, {payment_method: {card: cardElement}})`
   creates a card PaymentMethod from the Element and confirms the PaymentIntent with it.
   localstripe's Stripe.js only runs its 3-D Secure step (it expects a server to have attached
   the card), so the Stripe.js it serves here gets that first step: the card goes from the page
   to this server (never to the service), as it goes to Stripe.
2. Stripe sends `payment_intent.canceled` when a PaymentIntent is canceled; localstripe does not.
3. Stripe sends `charge.refunded` (the Charge, with its running `amount_refunded`) when a refund
   is made; localstripe does not.

usage: python scripts/localstripe_server.py PORT
"""
import json
import sys

from aiohttp import web

import localstripe.resources as resources
import localstripe.server as server
from localstripe.errors import UserError
from localstripe.resources import Charge, Event, PaymentIntent, PaymentMethod, Refund
from localstripe.webhooks import schedule_webhook

CONFIRM_CARD_PATH = '/js.stripe.com/grants/confirm_card/'

# Added to the Stripe.js localstripe serves (gap 1). LOCALSTRIPE_BASE_API is localstripe's own.
CONFIRM_CARD_JS = r"""
;(function () {
  var base = LOCALSTRIPE_BASE_API;
  var make = Stripe;
  Stripe = function (key) {
    var stripe = make(key);
    var authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async function (clientSecret, data) {
      var card = data && data.payment_method && data.payment_method.card;
      if (!card || !card.value) { return authenticate(clientSecret, data); }
      var pi = clientSecret.match(/^(pi_\w+)_secret_/)[1];
      var r = await fetch(base + '/js.stripe.com/grants/confirm_card/' + pi, {
        method: 'POST',
        body: JSON.stringify({key: key, client_secret: clientSecret, card: card.value.card}),
      });
      var body = await r.json().catch(function () { return {}; });
      if (r.status !== 200 || body.error) {
        return {error: body.error || {message: 'HTTP ' + r.status}};
      }
      if (body.status === 'requires_action') { return authenticate(clientSecret, data); }
      return {paymentIntent: body};
    };
    return stripe;
  };
})();
"""


def confirm_card(pi_id, data):
    """Gap 1: the card of the page's Element becomes the PaymentIntent's PaymentMethod, and the
    PaymentIntent is confirmed (a declined card fails it and sends payment_intent.payment_failed)."""
    if not str(data.get('key', '')).startswith('pk_'):
        raise UserError(401, 'Unauthorized')
    pi = PaymentIntent._api_retrieve(pi_id)
    if data.get('client_secret') != pi.client_secret:
        raise UserError(401, 'Unauthorized')
    if pi.status != 'requires_payment_method':
        raise UserError(400, 'This PaymentIntent cannot be confirmed in status ' + pi.status)
    card = data.get('card') or {}
    pm = PaymentMethod._api_create(
        type='card',
        card={k: card.get(k) for k in ('number', 'exp_month', 'exp_year', 'cvc')})
    pi.payment_method = pm.id
    # A new attempt after a declined one (Stripe keeps the PaymentIntent open for another card).
    pi.latest_charge = None
    pi._confirm(on_failure_now=pi._report_failure)
    return pi


@web.middleware
async def grants_gaps(request, handler):
    if request.method == 'POST' and request.path.startswith(CONFIRM_CARD_PATH):
        try:
            data = json.loads(await request.text() or '{}')
            pi = confirm_card(request.path[len(CONFIRM_CARD_PATH):], data)
        except UserError as e:
            return e.to_response()
        except (ValueError, TypeError):
            return UserError(400, 'Bad request').to_response()
        resources.store.dump_to_disk()
        return server.json_response(pi._export())
    response = await handler(request)
    if request.method == 'GET' and request.path == '/js.stripe.com/v3/':
        return web.Response(text=response.text + CONFIRM_CARD_JS,
                            content_type='application/javascript')
    return response


def send_canceled_events():
    """Gap 2: payment_intent.canceled."""
    cancel = PaymentIntent._api_cancel.__func__

    def _api_cancel(cls, id, **kwargs):
        obj = cancel(cls, id, **kwargs)
        schedule_webhook(Event('payment_intent.canceled', obj))
        return obj
    PaymentIntent._api_cancel = classmethod(_api_cancel)


def send_refunded_events():
    """Gap 3: charge.refunded, with the Charge as it is after the refund."""
    create = Refund._api_create.__func__

    def _api_create(cls, **data):
        refund = create(cls, **data)
        schedule_webhook(Event('charge.refunded', Charge._api_retrieve(refund.charge)))
        return refund
    Refund._api_create = classmethod(_api_create)


def main():
    port = int(sys.argv[1])
    # In memory only: localstripe would otherwise load and save /tmp/localstripe.pickle, which
    # another stack on this machine (make dev beside make test) shares.
    resources.store.dump_to_disk = lambda: None
    send_canceled_events()
    send_refunded_events()
    app = web.Application(middlewares=[server.error_middleware, grants_gaps, server.auth_middleware])
    app.on_response_prepare.append(server.add_cors_headers)
    # localstripe's routes, re-registered on this app (its own app has the save-to-disk middleware).
    for resource in server.app.router.resources():
        for route in resource:
            if route.method == 'HEAD':
                continue
            info = resource.get_info()
            path = info.get('path') or info.get('formatter')
            handler = route.handler
            if path == '/v1/payment_intents/{id}/cancel':
                # Its handler holds the method taken at import: give it the one that sends the event.
                handler = server.api_extra(PaymentIntent._api_cancel, path)
            app.router.add_route(route.method, path, handler)
    web.run_app(app, host='127.0.0.1', port=port, access_log=None, print=None)


if __name__ == '__main__':
    main()
