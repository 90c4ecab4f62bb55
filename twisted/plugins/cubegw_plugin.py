from twisted.application.service import ServiceMaker

cubegw = ServiceMaker(
    "cubegw", "cubegw.tap", "Smart home gateway agent (G2/G4 interfaces)", "cubegw")
