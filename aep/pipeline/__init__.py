"""aep/pipeline"""
