"""aep/coordination"""
