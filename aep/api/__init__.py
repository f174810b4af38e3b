"""aep/api"""
