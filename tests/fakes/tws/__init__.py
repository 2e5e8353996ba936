"""A protocol-level fake TWS / IB Gateway for the ``ibkr_tws`` adapter's tests (import it from
``tests.fakes.tws_server``)."""
