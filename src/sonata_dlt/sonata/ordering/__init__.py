"""Product Ordering (MEF 123 v10): orders and their state machines.

- ``states``      the MEF state machines as tables; ``require`` refuses (409) what they do not allow
- ``common``      hrefs, locked look-ups, ``OrderEdit`` (the one way an order document changes), notifications
- ``validation``  the business rules of a new order beyond its JSON Schema (422 with JSON Pointers)
- ``orders``      buyer: create, list, retrieve, patch product orders
- ``tasks``       Cancel Product Order and Modify Product Order Item Requested Delivery Date
- ``charges``     charges: raised by the seller, answered by the buyer, timed out by ``charge_timeout_worker``
- ``seller``      the seller's actions (accept, reject, progress, complete, fail, charge, decide), for the
                  seller fulfilment API
"""
