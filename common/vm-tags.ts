/** The tag that makes a VM of a site a member of a protected domain (set when it is provisioned or recovered; a drill's copies go without it). */
export const PROTECTED_DOMAIN_TAG = 'protectedDomain';
