from twisted.application.service import ServiceMaker

cubeplat = ServiceMaker(
    "cubeplat", "cubegw.platform.tap",
    "Reference platform: distribution, operation, fault injection", "cubeplat")
